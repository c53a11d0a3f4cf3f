#!/usr/bin/env bash
# Rebuilds the provider's compiled front-end assets in idp/static/govuk/ from the npm packages pinned
# in package-lock.json. The output is committed (a `pip install` needs no node); run this only after
# changing frontend/idp.scss or upgrading govuk-frontend, which must stay at the version the
# govuk-frontend-jinja range in pyproject.toml supports.
#
#   frontend/build.sh          (needs Node.js 20+ and npm)
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund
out=../idp/static/govuk
rm -rf "$out"
mkdir -p "$out"

# idp.scss turns GOV.UK's font and crown off; only the components the pages use are compiled.
npx --no-install sass --no-source-map --style=compressed --quiet-deps \
  --load-path=node_modules/govuk-frontend/dist idp.scss "$out/idp.min.css"

# GOV.UK Frontend's JavaScript as shipped (an ES module); static/init.js imports and starts it.
sed '/^\/\/# sourceMappingURL=/d; s|//# sourceMappingURL=[^ ]*$||' \
  node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js > "$out/govuk-frontend.min.js"

version=$(node -p 'require("./node_modules/govuk-frontend/package.json").version')
cat > "$out/README.md" <<NOTICE
Built by frontend/build.sh from govuk-frontend $version (npm) and frontend/idp.scss: do not edit.

GOV.UK Frontend is released under the MIT License, Copyright (c) Crown Copyright (Government Digital
Service): https://github.com/alphagov/govuk-frontend/blob/main/LICENSE.txt
NOTICE

# Nothing may point at GOV.UK's font files or images (none are shipped).
if grep -o 'url([^)]*)' "$out/idp.min.css" | grep -v 'url(data:' ; then
  echo "build.sh: the stylesheet refers to files that are not shipped (above)" >&2
  exit 1
fi
if grep -qi 'GDS Transport' "$out/idp.min.css"; then
  echo "build.sh: the stylesheet still names GOV.UK's font" >&2
  exit 1
fi
ls -l "$out"
