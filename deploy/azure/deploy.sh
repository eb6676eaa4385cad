#!/usr/bin/env bash
# Azure Container Apps + Azure Cache for Redis for the bot.
# Needs the Azure CLI (`az login`) and an image the Container App can pull (see deploy/README.md).
#
# Keyless (recommended): the app gets a system-assigned managed identity with the role
# "Cognitive Services OpenAI User" on your Azure OpenAI resource; no Azure OpenAI key is stored.
#
#   RG=slackgpt LOCATION=swedencentral IMAGE=ghcr.io/YOUR-ORG/slack-azure-gpt:latest \
#   AZURE_OPENAI_ENDPOINT=https://YOUR-RESOURCE.openai.azure.com/ AZURE_OPENAI_AUTH=entra \
#   AZURE_OPENAI_DEPLOYMENT=gpt-5-mini SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... \
#   bash deploy/azure/deploy.sh
#
# With a key instead: AZURE_OPENAI_AUTH=key (the default) and AZURE_OPENAI_KEY=... ; the key is
# kept as a Container Apps secret. REDIS_SHARDS=3 gives a clustered Premium cache instead of Basic.
set -euo pipefail

: "${RG:?set RG, the resource group}"
: "${LOCATION:?set LOCATION, e.g. swedencentral}"
: "${IMAGE:?set IMAGE, the container image}"
: "${AZURE_OPENAI_ENDPOINT:?}" "${SLACK_BOT_TOKEN:?}" "${SLACK_SIGNING_SECRET:?}"
AZURE_OPENAI_AUTH="${AZURE_OPENAI_AUTH:-key}"
AZURE_OPENAI_DEPLOYMENT="${AZURE_OPENAI_DEPLOYMENT:-gpt-35-turbo}"
# v1 needs no api-version upgrades and takes every current model; dated versions still work.
AZURE_OPENAI_API_VERSION="${AZURE_OPENAI_API_VERSION:-v1}"
APP="${APP:-slack-azure-gpt}"
REDIS="${REDIS:-${APP}-redis-$RANDOM}"
ENV_NAME="${ENV_NAME:-${APP}-env}"

case "$AZURE_OPENAI_AUTH" in
  entra) ;;
  key) : "${AZURE_OPENAI_KEY:?set AZURE_OPENAI_KEY, or AZURE_OPENAI_AUTH=entra for keyless}" ;;
  *) echo "AZURE_OPENAI_AUTH must be key or entra" >&2; exit 2 ;;
esac

az group create --name "$RG" --location "$LOCATION" --output none

# Azure Cache for Redis: TLS only (port 6380). noeviction, because every key the bot writes has a
# TTL and the default volatile-lru would silently drop thread history when memory runs out.
# REDIS_SHARDS=N (2 or more) makes it a Premium cache with clustering (the OSS cluster policy);
# the bot then runs in Redis Cluster mode (REDIS_CLUSTER=true below).
if [ "${REDIS_SHARDS:-1}" -gt 1 ]; then
  redis_size=(--sku Premium --vm-size p1 --shard-count "$REDIS_SHARDS")
  REDIS_CLUSTER=true
else
  redis_size=(--sku Basic --vm-size c0)
  REDIS_CLUSTER=false
fi
az redis create --resource-group "$RG" --name "$REDIS" --location "$LOCATION" \
  "${redis_size[@]}" --minimum-tls-version 1.2 \
  --redis-configuration '{"maxmemory-policy": "noeviction"}' --output none
REDIS_HOST=$(az redis show -g "$RG" -n "$REDIS" --query hostName -o tsv)
REDIS_KEY=$(az redis list-keys -g "$RG" -n "$REDIS" --query primaryKey -o tsv)
REDIS_URL="rediss://:${REDIS_KEY}@${REDIS_HOST}:6380/0"

az containerapp env create --name "$ENV_NAME" --resource-group "$RG" --location "$LOCATION" --output none

# Secrets are stored by Container Apps and referenced with secretref:, never as plain env values.
secrets=("slack-bot-token=${SLACK_BOT_TOKEN}" "slack-signing-secret=${SLACK_SIGNING_SECRET}"
         "redis-url=${REDIS_URL}")
env_vars=("AZURE_OPENAI_ENDPOINT=${AZURE_OPENAI_ENDPOINT}"
          "AZURE_OPENAI_DEPLOYMENT=${AZURE_OPENAI_DEPLOYMENT}"
          "AZURE_OPENAI_API_VERSION=${AZURE_OPENAI_API_VERSION}"
          "AZURE_OPENAI_AUTH=${AZURE_OPENAI_AUTH}"
          "SLACK_BOT_TOKEN=secretref:slack-bot-token"
          "SLACK_SIGNING_SECRET=secretref:slack-signing-secret"
          "REDIS_URL=secretref:redis-url" "REDIS_CLUSTER=${REDIS_CLUSTER}" "PORT=3000")
identity=()
if [ "$AZURE_OPENAI_AUTH" = "entra" ]; then
  # A system-assigned identity: Container Apps sets IDENTITY_ENDPOINT/IDENTITY_HEADER, which
  # azure-identity's DefaultAzureCredential uses; there is no key to store or rotate.
  identity=(--system-assigned)
else
  secrets+=("azure-openai-key=${AZURE_OPENAI_KEY}")
  env_vars+=("AZURE_OPENAI_KEY=secretref:azure-openai-key")
fi

az containerapp create --name "$APP" --resource-group "$RG" --environment "$ENV_NAME" \
  --image "$IMAGE" --target-port 3000 --ingress external \
  --min-replicas 1 --max-replicas 5 --cpu 0.5 --memory 1.0Gi "${identity[@]}" \
  --secrets "${secrets[@]}" --env-vars "${env_vars[@]}" --output none

if [ "$AZURE_OPENAI_AUTH" = "entra" ]; then
  # The identity may call the resource's inference API (and nothing else: not its keys, not
  # its deployments). Role assignments take a few minutes to apply; `doctor` shows a 401/403
  # until then.
  PRINCIPAL=$(az containerapp show -n "$APP" -g "$RG" --query identity.principalId -o tsv)
  OPENAI_HOST=$(echo "$AZURE_OPENAI_ENDPOINT" | sed -E 's#^https://([^/]+).*#\1#')
  OPENAI_ID=$(az resource list --resource-type Microsoft.CognitiveServices/accounts \
    --query "[?properties.endpoint && contains(properties.endpoint, '${OPENAI_HOST}')].id | [0]" -o tsv)
  : "${OPENAI_ID:?could not find the Azure OpenAI resource of $AZURE_OPENAI_ENDPOINT in this subscription}"
  az role assignment create --assignee-object-id "$PRINCIPAL" --assignee-principal-type ServicePrincipal \
    --role "Cognitive Services OpenAI User" --scope "$OPENAI_ID" --output none
fi

FQDN=$(az containerapp show -n "$APP" -g "$RG" --query properties.configuration.ingress.fqdn -o tsv)
echo "Deployed. Slack request URL: https://${FQDN}/slack/events"
echo "Manifest for your Slack app:  python -m bot manifest --url https://${FQDN}"
echo "Check it:                     az containerapp exec -n $APP -g $RG --command 'python -m bot doctor'"
