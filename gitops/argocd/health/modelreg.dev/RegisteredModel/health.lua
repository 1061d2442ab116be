-- Argo CD health check for modelreg.dev/v1alpha1 RegisteredModel.
-- The operator writes status.observedGeneration and the Ready condition
-- (operator/modelreg/controller/versions.py, summarize_model); see docs/gitops.md.
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
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  return waiting()
end
if generation ~= nil and ready.observedGeneration ~= nil and generation > ready.observedGeneration then
  return waiting()
end

hs.message = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
