"""Run Argo CD resource health checks (``health.lua``) the way Argo CD runs them.

Argo CD (util/lua/lua.go) runs a health script in gopher-lua (Lua 5.1) with the live
object, decoded from JSON, as the global ``obj`` (maps become tables, lists 1-based
arrays, null is nil), and reads ``status`` and ``message`` from the table it returns.
Scripts configured in ``argocd-cm`` get only the base, table and package libraries and a
"safe" ``os`` with ``time`` and ``date``; ``string``, ``math``, ``io`` and the rest are
there only with ``resource.customizations.useOpenLibs.<group>_<kind>: "true"``. The
sandbox here is the same, so a script that passes here runs unchanged in Argo CD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lupa import lua51  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent.parent
GITOPS = REPO / "gitops" / "argocd"
HEALTH = GITOPS / "health"
GROUP = "modelreg.dev"
KINDS = ("RegisteredModel", "ModelVersion", "ModelDeployment")

#: what Argo CD accepts (gitops-engine/pkg/health); anything else becomes Unknown
STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
INVALID_STATUS = "Lua returned an invalid health status"
LuaError: type[Exception] = lua51.LuaError

#: run before the script: leave what Argo CD's VM offers without useOpenLibs
_SANDBOX = """
local safe_os = {time = os.time, date = os.date}
debug.setmetatable("", nil)  -- no string methods ("x"):find(...) without the string library
string, math, io, debug, coroutine, python = nil, nil, nil, nil, nil, nil
os = safe_os
for _, name in ipairs({"string", "math", "io", "debug", "coroutine", "python"}) do
  package.loaded[name] = nil
end
package.loaded.os = safe_os
package.path, package.cpath = "", ""
"""


@dataclass(frozen=True)
class Health:
    """An Argo CD HealthStatus: what a health_test.yaml case expects."""

    status: str
    message: str = ""


def script(kind: str) -> Path:
    return HEALTH / GROUP / kind / "health.lua"


class _NoTimestamps(yaml.SafeLoader):
    """YAML as Argo CD reads it (YAML to JSON): timestamps stay strings."""


_NoTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_NoTimestamps)  # noqa: S506 (a SafeLoader)


def _to_lua(lua: Any, value: Any) -> Any:
    """A JSON-like Python value as Argo CD's decodeValue makes it: tables, 1-based arrays."""
    if isinstance(value, Mapping):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[str(key)] = _to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            table[index] = _to_lua(lua, item)
        return table
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypeError(f"not a JSON value: {value!r}")


def run(source: str, obj: Mapping[str, Any]) -> Health:
    """The health that Argo CD computes for ``obj`` with the health script ``source``."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(_SANDBOX)
    lua.globals()["obj"] = _to_lua(lua, obj)
    result = lua.execute(source)
    if result is None:
        return Health("")
    if lua51.lua_type(result) != "table":
        kind = lua51.lua_type(result) or type(result).__name__
        raise TypeError(f"expect table output from Lua script, not {kind}")
    status, message = result["status"], result["message"]
    if not isinstance(status, str | None) or not isinstance(message, str | None):
        raise TypeError(f"status and message must be strings: {status!r}, {message!r}")
    if status not in STATUSES:
        return Health("Unknown", INVALID_STATUS)
    return Health(status, message or "")
