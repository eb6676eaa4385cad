#!/usr/bin/env bash
# Azure Container Apps + Azure Cache for Redis for the bot, with the Azure OpenAI key as a secret.
# Needs the Azure CLI (`az login`) and an image the Container App can pull (see deploy/README.md).
#
#   RG=slackgpt LOCATION=swedencentral IMAGE=ghcr.io/YOUR-ORG/slack-azure-gpt:latest \
#   AZURE_OPENAI_ENDPOINT=https://YOUR-RESOURCE.openai.azure.com/ AZURE_OPENAI_KEY=... \
#   AZURE_OPENAI_DEPLOYMENT=gpt-4o SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... \
#   bash deploy/azure/deploy.sh
set -euo pipefail

: "${RG:?set RG, the resource group}"
: "${LOCATION:?set LOCATION, e.g. swedencentral}"
: "${IMAGE:?set IMAGE, the container image}"
: "${AZURE_OPENAI_ENDPOINT:?}" "${AZURE_OPENAI_KEY:?}" "${SLACK_BOT_TOKEN:?}" "${SLACK_SIGNING_SECRET:?}"
AZURE_OPENAI_DEPLOYMENT="${AZURE_OPENAI_DEPLOYMENT:-gpt-35-turbo}"
AZURE_OPENAI_API_VERSION="${AZURE_OPENAI_API_VERSION:-2024-10-21}"
APP="${APP:-slack-azure-gpt}"
REDIS="${REDIS:-${APP}-redis-$RANDOM}"
ENV_NAME="${ENV_NAME:-${APP}-env}"

az group create --name "$RG" --location "$LOCATION" --output none

# Azure Cache for Redis: TLS only (port 6380). noeviction, because every key the bot writes has a
# TTL and the default volatile-lru would silently drop thread history when memory runs out.
az redis create --resource-group "$RG" --name "$REDIS" --location "$LOCATION" \
  --sku Basic --vm-size c0 --minimum-tls-version 1.2 \
  --redis-configuration '{"maxmemory-policy": "noeviction"}' --output none
REDIS_HOST=$(az redis show -g "$RG" -n "$REDIS" --query hostName -o tsv)
REDIS_KEY=$(az redis list-keys -g "$RG" -n "$REDIS" --query primaryKey -o tsv)
REDIS_URL="rediss://:${REDIS_KEY}@${REDIS_HOST}:6380/0"

az containerapp env create --name "$ENV_NAME" --resource-group "$RG" --location "$LOCATION" --output none

# Secrets are stored by Container Apps and referenced with secretref:, never as plain env values.
az containerapp create --name "$APP" --resource-group "$RG" --environment "$ENV_NAME" \
  --image "$IMAGE" --target-port 3000 --ingress external \
  --min-replicas 1 --max-replicas 5 --cpu 0.5 --memory 1.0Gi \
  --secrets "azure-openai-key=${AZURE_OPENAI_KEY}" "slack-bot-token=${SLACK_BOT_TOKEN}" \
            "slack-signing-secret=${SLACK_SIGNING_SECRET}" "redis-url=${REDIS_URL}" \
  --env-vars "AZURE_OPENAI_ENDPOINT=${AZURE_OPENAI_ENDPOINT}" \
             "AZURE_OPENAI_DEPLOYMENT=${AZURE_OPENAI_DEPLOYMENT}" \
             "AZURE_OPENAI_API_VERSION=${AZURE_OPENAI_API_VERSION}" \
             "AZURE_OPENAI_KEY=secretref:azure-openai-key" \
             "SLACK_BOT_TOKEN=secretref:slack-bot-token" \
             "SLACK_SIGNING_SECRET=secretref:slack-signing-secret" \
             "REDIS_URL=secretref:redis-url" "PORT=3000" \
  --output none

FQDN=$(az containerapp show -n "$APP" -g "$RG" --query properties.configuration.ingress.fqdn -o tsv)
echo "Deployed. Slack request URL: https://${FQDN}/slack/events"
echo "Manifest for your Slack app:  python -m bot manifest --url https://${FQDN}"
