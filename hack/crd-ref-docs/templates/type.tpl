{{- define "type" -}}
{{- $type := .type -}}
{{- $gv := .gv -}}
{{- with $type.Doc }}{{ template "paragraphs" . }}

{{ end -}}
{{- if $type.References -}}
Used by: {{ range $i, $r := $type.SortedReferences }}{{ if $i }}, {{ end }}{{ markdownRenderTypeLink $r }}{{ end }}.

{{ end -}}
{{- $rules := list -}}
{{- range (index $type.Markers "kubebuilder:validation:XValidation") }}{{ $rules = append $rules .Message }}{{ end -}}
{{- if $rules -}}
Rules:
{{ range $rules }}
- {{ . }}
{{- end }}

{{ end -}}
{{- if $type.EnumValues -}}
{{- if $type.IsAlias }}A {{ template "typeName" $type.UnderlyingType }}, one of:

{{ end -}}
| Value | Description |
| --- | --- |
{{ range $type.EnumValues -}}
| `{{ .Name }}` | {{ template "cell" (regexReplaceAll "^[A-Za-z0-9]+: " (trim .Doc) "") }} |
{{ end }}
{{ else if $type.Members -}}
| Field | Type | Required | Default | Validation | Description |
| --- | --- | --- | --- | --- | --- |
{{ if $type.GVK -}}
| `apiVersion` | string | required | | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` | The API group and version. |
| `kind` | string | required | | `{{ $type.GVK.Kind }}` | The kind. |
{{ end -}}
{{ range $type.Members -}}
{{ template "fieldRow" (dict "field" . "kind" (not (not $type.GVK))) }}
{{ end }}
{{ else if $type.IsAlias -}}
A {{ template "typeName" $type.UnderlyingType }}.
{{ with $type.Validation }}
Validation: {{ template "validation" (dict "validation" . "markers" $type.Markers) }}.
{{ end }}
{{ end -}}
{{- end -}}

{{- define "fieldRow" -}}
{{- $kind := .kind -}}
{{- with .field -}}
{{- /* A struct type's CEL rules show in its own section, not on every field of that type. */ -}}
{{- $ft := .Type }}{{ if eq (int $ft.Kind) 4 }}{{ $ft = $ft.UnderlyingType }}{{ end -}}
{{- $typeRules := list }}{{ if eq (int $ft.Kind) 6 }}{{ range (index $ft.Markers "kubebuilder:validation:XValidation") }}{{ $typeRules = append $typeRules .Message }}{{ end }}{{ end -}}
{{- $required := or (index .Markers "required") (index .Markers "kubebuilder:validation:Required") -}}
| `{{ .Name }}` | {{ template "fieldType" . }} | {{ if $required }}required{{ else }}optional{{ end }} | {{ with .Default }}`{{ . }}`{{ end }} | {{ template "validation" (dict "validation" .Validation "markers" .Markers "typeRules" $typeRules) }} | {{ if and $kind (eq .Name "metadata") }}Standard object metadata: name, namespace, labels, annotations.{{ else }}{{ template "cell" .Doc }}{{ end }} |
{{- end -}}
{{- end -}}

{{- /* fieldType: the schema type; a kubebuilder:validation:Type marker wins (durations are strings). */ -}}
{{- define "fieldType" -}}
{{- with index .Markers "kubebuilder:validation:Type" -}}
{{ printf "%v" (first .) }}{{ if eq $.Type.Name "Duration" }} (duration){{ end }}
{{- else -}}
{{ template "typeName" .Type }}
{{- end -}}
{{- end -}}

{{- define "typeName" -}}
{{- if eq (int .Kind) 4 -}}{{ template "typeName" .UnderlyingType }}
{{- else if eq (int .Kind) 5 -}}{{ template "typeName" .UnderlyingType }} array
{{- else if eq (int .Kind) 3 -}}map of {{ template "typeName" .KeyType }} to {{ template "typeName" .ValueType }}
{{- else -}}{{ markdownRenderTypeLink . }}
{{- end -}}
{{- end -}}

{{- /* validation: the OpenAPI constraints and the CEL rules' messages, as one cell. */ -}}
{{- define "validation" -}}
{{- $v := dict -}}
{{- range .validation -}}
{{- $kv := regexSplit ": " . 2 -}}
{{- $_ := set $v (first $kv) (last $kv) -}}
{{- end -}}
{{- $out := list -}}
{{- with $v.Enum -}}
{{- $vals := list -}}
{{- range splitList " " (trimSuffix "]" (trimPrefix "[" .)) }}{{ $vals = append $vals (printf "`%s`" .) }}{{ end -}}
{{- $out = append $out (printf "one of %s" (join ", " $vals)) -}}
{{- end -}}
{{- range list (list "Minimum" "minimum") (list "Maximum" "maximum") (list "MinLength" "min length") (list "MaxLength" "max length") (list "Pattern" "pattern") (list "MinItems" "min items") (list "MaxItems" "max items") (list "items:MinLength" "items' min length") (list "items:MaxLength" "items' max length") (list "items:Pattern" "items' pattern") (list "MinProperties" "min entries") (list "MaxProperties" "max entries") -}}
{{- $pair := . }}{{ with get $v (first $pair) }}{{ $out = append $out (printf "%s %s" (last $pair) .) }}{{ end -}}
{{- end -}}
{{- range $name, $value := $v -}}
{{- if not (has $name (list "Enum" "Minimum" "Maximum" "MinLength" "MaxLength" "Pattern" "MinItems" "MaxItems" "items:MinLength" "items:MaxLength" "items:Pattern" "MinProperties" "MaxProperties" "Required" "Optional" "Type")) }}{{ $out = append $out (printf "%s: %s" $name $value) }}{{ end -}}
{{- end -}}
{{- $typeRules := .typeRules | default list -}}
{{- with .markers -}}
{{- if index . "listType" }}{{ if eq (printf "%v" (first (index . "listType"))) "set" }}{{ $out = append $out "unique items" }}{{ end }}{{ end -}}
{{- range (index . "kubebuilder:validation:XValidation") }}{{ if not (has .Message $typeRules) }}{{ $out = append $out (printf "rule: %s" .Message) }}{{ end }}{{ end -}}
{{- end -}}
{{- join "; " $out | replace "|" "\\|" -}}
{{- end -}}
