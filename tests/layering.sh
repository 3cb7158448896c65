#!/usr/bin/env bash
# Fails on an #include that points up or sideways in the layers of the code. The layers come from
# CUVAE_LAYERS in CMakeLists.txt as arguments "folder:dep,dep,...": a file under folder/ may
# include headers of its own folder and of the folders after the colon, nothing else of the
# project (system and third-party headers are not checked).
#   tests/layering.sh SOURCE_DIR LAYER...
set -uo pipefail
root="$1"; shift
declare -A allowed
folders=()
for spec in "$@"; do
  folder="${spec%%:*}"
  folders+=("$folder")
  allowed["$folder"]=" $folder ${spec#*:} "
  allowed["$folder"]="${allowed[$folder]//,/ }"
done
bad=0 checked=0
for folder in "${folders[@]}"; do
  [ -d "$root/$folder" ] || { echo "layering: no folder $folder/"; bad=1; continue; }
  while IFS= read -r -d '' file; do
    while IFS=: read -r line target; do
      checked=$((checked + 1))
      top="${target%%/*}"
      # Only the project's own folders are layers; anything else is a system or vendored header.
      case " ${folders[*]} " in *" $top "*) ;; *) continue ;; esac
      if [[ "${allowed[$folder]}" != *" $top "* ]]; then
        rel="${file#"$root"/}"
        echo "layering: $rel:$line includes \"$target\": $folder/ may use only${allowed[$folder]}"
        bad=1
      fi
    done < <(grep -noE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]+"' "$file" | sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
  done < <(find "$root/$folder" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -print0)
done
echo "layering: $checked includes checked in ${#folders[@]} folders"
[ $bad -eq 0 ] && echo "layering: every include points down the layers" 
exit $bad
