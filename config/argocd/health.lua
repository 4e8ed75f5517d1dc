-- Argo CD health check for OAuthClient (cloudflare.oauth-operator.dev/v1alpha1).
--
-- It reads the kstatus conditions the operator writes: Ready is the summary, Stalled
-- means a human must act (bad credentials, a spec Cloudflare refuses, a client that does
-- not exist), Reconciling means work is under way (creating, waiting for DNS
-- verification, rate limited, retrying a Cloudflare error). Like kstatus, a status
-- written for an older generation of the spec counts as in progress.
--
-- Argo CD runs health scripts with the base and table libraries only: no string library.
local hs = {}

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: waiting for the operator to release the Cloudflare client"
  return hs
end

local conditions = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    conditions[c.type] = c
  end
end
local ready = conditions["Ready"]
local stalled = conditions["Stalled"]
local reconciling = conditions["Reconciling"]

local generation = obj.metadata.generation
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  if reconciling ~= nil and reconciling.status == "True" then
    hs.message = describe(reconciling)
  else
    hs.message = "Waiting for the operator to reconcile generation " .. generation
  end
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
elseif ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the operator to report status"
end
return hs
