"""Writes .aws-sam/build/template.yaml: template.yaml with every function's CodeUri pointing at
the zip `cargo lambda build --release --arm64 --output-format zip` made for its binary.

`sam build` would run cargo-lambda once per function (37 release builds with fat LTO); one
workspace build (`make build-arm64`) links each binary once and shares every dependency. `sam
deploy` picks up .aws-sam/build/template.yaml by itself, as it would after `sam build`.

    python package.py TEMPLATE TARGET_DIR OUTPUT
"""

import os
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse


def package(template_path: str, target_dir: str, output_path: str) -> list[str]:
    with open(template_path) as f:
        template = yaml_parse(f.read())
    missing = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        archive = os.path.abspath(os.path.join(target_dir, "lambda", binary, "bootstrap.zip"))
        if not os.path.isfile(archive):
            missing.append(f"{logical_id}: {archive}")
        resource["Properties"]["CodeUri"] = archive
        # Built already: nothing for `sam build` (or sam deploy) to build again.
        del resource["Metadata"]
    if missing:
        raise SystemExit("missing function zips (run `make build-arm64`):\n  " + "\n  ".join(missing))
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    with open(output_path, "w") as f:
        f.write(yaml_dump(template))
    return sorted(r for r, v in template["Resources"].items() if v.get("Type") == "AWS::Serverless::Function")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    functions = package(*sys.argv[1:])
    print(f"package: {len(functions)} functions -> {sys.argv[3]}")
