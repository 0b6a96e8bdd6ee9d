-- Argo CD health check for every foresight.dev kind.
-- Argo CD reads one script per kind (argocd-cm key resource.customizations.health.foresight.dev_<Kind>);
-- all six Foresight kinds share this one. This file is the source of argocd-cm-patch.yaml, which
-- embeds it once per kind (regenerate it with `python manifests/argocd/render.py`).
--
-- Rules, in order:
--   no status yet, or metadata.generation newer than status.observedGeneration -> Progressing
--   spec.suspend or spec.runPolicy.suspend is true                            -> Suspended
--   condition Ready=True                                                      -> Healthy
--   condition Degraded=True                                                   -> Degraded
--   status.phase Retrying (a temporary failure, retried with backoff)         -> Progressing
--   condition Ready=False with an in-progress reason (Pending, Running...)    -> Progressing
--   condition Ready=False with any other reason                               -> Degraded
--   no Ready condition, or Ready=Unknown                                      -> Progressing
-- The message is the Ready condition's message (its reason when the message is empty).
local hs = {}

-- Ready=False reasons that mean "work under way", not failure (reason constants of foresight.api).
local inProgressReasons = {
  Progressing = true,
  Pending = true,
  Running = true,
  Training = true,
  Predicting = true,
  Verifying = true,
  Fetching = true,
  Withdrawing = true,
  Waiting = true,
  CollectingSamples = true,
  DeploymentNotReady = true,
  ModelVersionNotReady = true,
}

local function isSuspended(spec)
  if spec == nil then
    return false
  end
  if spec.suspend == true then
    return true
  end
  return spec.runPolicy ~= nil and spec.runPolicy.suspend == true
end

local function findCondition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Foresight operator to report status"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Foresight operator to observe generation " .. tostring(generation)
  return hs
end

local ready = findCondition(status, "Ready")

if isSuspended(obj.spec) then
  hs.status = "Suspended"
  hs.message = describe(ready, "Suspended")
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

-- A Ready condition written for an older generation says nothing about the current spec.
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Foresight operator to observe generation " .. tostring(generation)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

local degraded = findCondition(status, "Degraded")
if ready.status == "False" and degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
  return hs
end

if ready.status == "False" and status.phase == "Retrying" then
  hs.status = "Progressing"
  hs.message = describe(ready, "Retrying")
  return hs
end

if ready.status == "False" then
  if ready.reason == "Suspended" then
    hs.status = "Suspended"
  elseif ready.reason ~= nil and inProgressReasons[ready.reason] then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Readiness unknown")
return hs
