-- Argo CD health check for modelreg.dev/v1alpha1 ModelVersion.
-- Based on the conditions the operator writes (operator/modelreg/controller/versions.py):
-- ArtifactVerified, ImageResolved, Approved and Ready, the summary. See docs/gitops.md.
--   Ready=True  (Deployable)                                  -> Healthy
--   Ready=Unknown (VerificationPending: store or registry
--     unreachable, retried)                                   -> Progressing
--   Ready=False NotApproved, Approved=PendingManualApproval   -> Suspended (waits for approvers)
--   Ready=False NotApproved, Approved=MetricGateFailed        -> Degraded (the metrics are
--     immutable: only a change of the model's policy helps)
--   Ready=False Archived                                      -> Healthy (retired on purpose)
--   Ready=False ModelNotFound                                 -> Progressing (re-evaluated when
--     the RegisteredModel appears)
--   Ready=False anything else (Rejected, ArtifactNotVerified,
--     ImageNotResolved, RecordTampered, InvalidSpec, ...)     -> Degraded
-- Runs without Lua's standard libraries (argocd-cm customizations do not get them):
-- only base functions and table.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status

local function waiting()
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end

if status == nil or status.observedGeneration == nil then
  return waiting()
end
if generation ~= nil and generation > status.observedGeneration then
  return waiting()
end

local ready = nil
local approved = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Approved" then
      approved = c
    end
  end
end
if ready == nil then
  return waiting()
end
if generation ~= nil and ready.observedGeneration ~= nil and generation > ready.observedGeneration then
  return waiting()
end

local message = ready.message or ""
hs.message = message
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status ~= "False" then
  hs.status = "Progressing"
elseif ready.reason == "NotApproved" then
  if approved ~= nil and approved.reason == "MetricGateFailed" then
    hs.status = "Degraded"
  else
    hs.status = "Suspended"
    hs.message = "waiting for approval: " .. message
  end
elseif ready.reason == "Archived" then
  hs.status = "Healthy"
elseif ready.reason == "ModelNotFound" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
return hs
