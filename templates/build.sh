#!/usr/bin/env bash
# Builds and publishes both Flex Templates (make flex-templates):
#   1. Cloud Build builds the batch and streaming images from templates/Dockerfile and
#      pushes them to Artifact Registry, tagged with TAG;
#   2. `gcloud dataflow flex-template build` writes each template spec to
#      gs://DATAFLOW_BUCKET/templates/NAME-TAG.json and copies it to NAME.json, the path the
#      Airflow DAG and the run commands in docs/SETUP_CICD.md use.
# Settings come from the environment or, when unset, from `terraform output` in terraform/.
set -euo pipefail
cd "$(dirname "$0")/.."

tf_output() { terraform -chdir=terraform output -raw "$1"; }

PROJECT="${PROJECT:-$(tf_output project_id)}"
REGION="${REGION:-$(tf_output region)}"
REGISTRY="${REGISTRY:-$(tf_output flex_template_registry)}"
DATAFLOW_BUCKET="${DATAFLOW_BUCKET:-$(tf_output dataflow_bucket)}"
DATAFLOW_SA="${DATAFLOW_SA:-$(tf_output dataflow_service_account)}"
CLOUDBUILD_SA="${CLOUDBUILD_SA:-$(tf_output cloudbuild_service_account)}"
TAG="${TAG:-$(git rev-parse --short=12 HEAD)-$(date -u +%Y%m%dt%H%M%S)}"

gcloud builds submit . \
  --project="$PROJECT" \
  --region="$REGION" \
  --config=templates/cloudbuild.yaml \
  --substitutions="_REGISTRY=$REGISTRY,_TAG=$TAG" \
  --service-account="projects/$PROJECT/serviceAccounts/$CLOUDBUILD_SA" \
  --gcs-source-staging-dir="gs://$DATAFLOW_BUCKET/cloudbuild/source"

for template in batch streaming; do
  spec="gs://$DATAFLOW_BUCKET/templates/$template-$TAG.json"
  # The job defaults baked into the spec: the least-privilege worker account and the
  # project's own staging bucket; a run can still override them.
  gcloud dataflow flex-template build "$spec" \
    --project="$PROJECT" \
    --image="$REGISTRY/$template:$TAG" \
    --sdk-language=PYTHON \
    --metadata-file="templates/$template/metadata.json" \
    --service-account-email="$DATAFLOW_SA" \
    --staging-location="gs://$DATAFLOW_BUCKET/staging" \
    --temp-location="gs://$DATAFLOW_BUCKET/tmp"
  gcloud storage cp "$spec" "gs://$DATAFLOW_BUCKET/templates/$template.json"
  echo "$template template: gs://$DATAFLOW_BUCKET/templates/$template.json (image $REGISTRY/$template:$TAG)"
done
