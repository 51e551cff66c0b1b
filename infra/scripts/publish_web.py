"""Uploads the web app (web/dist, `make web`) to the stack's WebBucket behind WebDistribution:
the last step of `make deploy`. index.html gets the API's URL (the stack's ApiUrl output) in its
`api-base` meta, since on AWS the page and the API have different origins; console.html is
devstack's console and is not uploaded (its script, in assets/, is, and nothing names it). Assets have content-hashed names and are cached for a year;
index.html is `no-cache` and uploaded last, so a page never names assets not uploaded yet; then
CloudFront forgets its copy of the page.

    python publish_web.py STACK_NAME DIST                       # upload (AWS credentials of the environment)
    python publish_web.py --plan OUT --api-url URL DIST         # write what would be uploaded, and manifest.json
"""

import argparse
import json
import mimetypes
import os
import re
import sys
import time

ASSETS_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
# Served by devstack only (/__devstack/): nothing on AWS answers its API.
LOCAL_ONLY = {"console.html"}
META = re.compile(r'(<meta\s+name="api-base"\s+content=")[^"]*(")')


def with_api_url(html: str, api_url: str) -> str:
    page, found = META.subn(lambda m: m.group(1) + api_url.rstrip("/") + m.group(2), html)
    if found != 1:
        raise SystemExit('index.html has no <meta name="api-base" content="...">: was web/dist built by make web?')
    return page


def plan(dist: str, api_url: str) -> list[dict]:
    """Every object to upload, index.html last: key, body, content type, cache control."""
    objects, page = [], None
    for root, _, files in os.walk(dist):
        for name in sorted(files):
            path = os.path.join(root, name)
            key = os.path.relpath(path, dist).replace(os.sep, "/")
            if key in LOCAL_ONLY:
                continue
            with open(path, "rb") as f:
                body = f.read()
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if key == "index.html":
                page = {"key": key, "body": with_api_url(body.decode(), api_url).encode(),
                        "content_type": "text/html; charset=utf-8", "cache_control": PAGE_CACHE}
            else:
                cache = ASSETS_CACHE if key.startswith("assets/") else PAGE_CACHE
                objects.append({"key": key, "body": body, "content_type": kind, "cache_control": cache})
    if page is None:
        raise SystemExit(f"{dist}/index.html is missing: run make web")
    return objects + [page]


def outputs(stack_name: str) -> dict:
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def upload(stack_name: str, dist: str) -> None:
    import boto3

    found = outputs(stack_name)
    missing = [k for k in ("ApiUrl", "WebBucketName", "WebDistributionId", "WebUrl") if k not in found]
    if missing:
        raise SystemExit(f"stack {stack_name} has no output {', '.join(missing)}: deploy template.yaml first")
    s3 = boto3.client("s3")
    for item in plan(dist, found["ApiUrl"]):
        s3.put_object(Bucket=found["WebBucketName"], Key=item["key"], Body=item["body"],
                      ContentType=item["content_type"], CacheControl=item["cache_control"])
    boto3.client("cloudfront").create_invalidation(
        DistributionId=found["WebDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 2, "Items": ["/", "/index.html"]},
                           "CallerReference": f"publish-{time.time_ns()}"},
    )
    print(f"web app published: {found['WebUrl']} (API {found['ApiUrl']})")


def write_plan(out: str, dist: str, api_url: str) -> None:
    manifest = []
    for item in plan(dist, api_url):
        path = os.path.join(out, item["key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(item["body"])
        manifest.append({k: item[k] for k in ("key", "content_type", "cache_control")})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack_name", nargs="?")
    parser.add_argument("dist")
    parser.add_argument("--plan", metavar="OUT")
    parser.add_argument("--api-url")
    args = parser.parse_args()
    if args.plan:
        if not args.api_url:
            parser.error("--plan needs --api-url")
        write_plan(args.plan, args.dist, args.api_url)
    elif args.stack_name:
        upload(args.stack_name, args.dist)
    else:
        parser.error("name the stack")


if __name__ == "__main__":
    sys.exit(main())
