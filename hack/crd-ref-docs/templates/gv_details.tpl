{{- define "gvDetails" -}}
{{- $gv := . -}}
{{- /* The kinds, the main one first, then any other in name order. */ -}}
{{- $kinds := list -}}
{{- range list "OAuthClient" "CloudflareAccount" -}}
{{- if has . $gv.Kinds }}{{ $kinds = append $kinds . }}{{ end -}}
{{- end -}}
{{- range $gv.SortedKinds -}}
{{- if not (has . $kinds) }}{{ $kinds = append $kinds . }}{{ end -}}
{{- end -}}
{{- /* owners: type name -> the list of "Kind/spec" and "Kind/status" it is reachable from. */ -}}
{{- $owners := dict -}}
{{- range $kinds -}}
{{- $kind := $gv.TypeForKind . -}}
{{- range $kind.Members -}}
{{- if or (eq .Name "spec") (eq .Name "status") -}}
{{- $part := printf "%s/%s" $kind.Name .Name -}}
{{- $reach := dict .Type.Name true -}}
{{- range until 12 -}}
{{- range $gv.SortedTypes -}}
{{- $t := . -}}
{{- range .References -}}
{{- if hasKey $reach .Name }}{{ $_ := set $reach $t.Name true }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := $reach -}}
{{- $_ := set $owners $name (append (get $owners $name | default list) $part) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
## Group `{{ $gv.GroupVersionString }}`

{{ template "paragraphs" $gv.Doc }}

Kinds:
{{- range $kinds }}
- [{{ . }}](#{{ lower . }})
{{- end }}
{{ range $kinds }}
{{- $kind := $gv.TypeForKind . }}
## {{ $kind.Name }}

{{ template "type" (dict "type" $kind "gv" $gv) }}
{{- range list "spec" "status" }}
{{- $part := printf "%s/%s" $kind.Name . }}
{{- $root := "" }}
{{- range $kind.Members }}{{ if eq .Name (last (splitList "/" $part)) }}{{ $root = .Type.Name }}{{ end }}{{ end }}
{{- /* The root (Spec or Status) first, then the rest of its types in name order. */ -}}
{{- range $gv.SortedTypes }}
{{- if and (eq .Name $root) (eq (toString (get $owners .Name)) (toString (list $part))) }}
### {{ .Name }}

{{ template "type" (dict "type" . "gv" $gv) }}
{{- end }}
{{- end }}
{{- range $gv.SortedTypes }}
{{- if and (ne .Name $root) (not .GVK) (eq (toString (get $owners .Name)) (toString (list $part))) }}
### {{ .Name }}

{{ template "type" (dict "type" . "gv" $gv) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $shared := list }}
{{- range $gv.SortedTypes }}
{{- if and (not .GVK) (gt (len (get $owners .Name | default list)) 1) }}{{ $shared = append $shared . }}{{ end }}
{{- end }}
{{- if $shared }}
## Shared types

Types that more than one kind, or both a spec and a status, refer to.
{{ range $shared }}
### {{ .Name }}

{{ template "type" (dict "type" . "gv" $gv) }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* paragraphs: a doc comment as Markdown paragraphs, the lines of each joined. */ -}}
{{- define "paragraphs" -}}
{{- $paras := list -}}
{{- range splitList "\n\n" (trim .) -}}
{{- $p := trim . | replace "\n" " " -}}
{{- if $p }}{{ $paras = append $paras $p }}{{ end -}}
{{- end -}}
{{- join "\n\n" $paras -}}
{{- end -}}

{{- /* cell: a doc comment as one table cell: lines and paragraphs joined, pipes escaped. */ -}}
{{- define "cell" -}}
{{- $paras := list -}}
{{- range splitList "\n\n" (trim .) -}}
{{- $p := trim . | replace "\n" " " -}}
{{- if $p }}{{ $paras = append $paras $p }}{{ end -}}
{{- end -}}
{{- join " " $paras | replace "|" "\\|" -}}
{{- end -}}
