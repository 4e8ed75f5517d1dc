package v1alpha1_test

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
)

func ctx() context.Context { return context.Background() }

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
