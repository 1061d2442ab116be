-- Argo CD health check for modelreg.dev/v1alpha1 ModelDeployment.
-- Based on the conditions the operator writes (operator/modelreg/controller/deployments.py):
-- Ready (the summary), Progressing and RolledBack. See docs/gitops.md.
--   RolledBack=True RolloutFailed or ApprovalRevoked          -> Degraded (not serving the
--     version the spec asks for until the spec changes or a newer version arrives)
--   RolledBack=False NoPreviousVersion, Ready not True         -> Degraded (scaled to zero)
--   Ready=True, RolledBack=True Manual                         -> Suspended (held by
--     modelreg.dev/rollback-to until the annotation is removed)
--   Ready=True  (Serving)                                      -> Healthy
--   Ready=Unknown (RollingOut)                                 -> Progressing
--   Ready=False NoApprovedVersion or VersionNotApproved        -> Suspended (waits for approvers)
--   Ready=False VersionNotFound                                -> Progressing (re-evaluated when
--     the version appears)
--   Ready=False anything else (VersionInvalid, RolloutFailed,
--     NoDeployableVersion, ...)                                -> Degraded
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
local rolledBack = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "RolledBack" then
      rolledBack = c
    end
  end
end
if ready == nil then
  return waiting()
end
if generation ~= nil and ready.observedGeneration ~= nil and generation > ready.observedGeneration then
  return waiting()
end

if rolledBack ~= nil and rolledBack.reason ~= "Manual" then
  if rolledBack.status == "True" or (rolledBack.status == "False" and ready.status ~= "True") then
    hs.status = "Degraded"
    hs.message = rolledBack.message or ""
    return hs
  end
end

hs.message = ready.message or ""
if ready.status == "True" then
  if rolledBack ~= nil and rolledBack.reason == "Manual" and rolledBack.status == "True" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
elseif ready.status ~= "False" then
  hs.status = "Progressing"
elseif ready.reason == "NoApprovedVersion" or ready.reason == "VersionNotApproved" then
  hs.status = "Suspended"
elseif ready.reason == "VersionNotFound" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
return hs
