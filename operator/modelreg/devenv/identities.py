"""Who exists in the local cluster: people for tests and demos, and system components.

People authenticate with static bearer tokens (``--token-auth-file``); the tokens are
random per environment and written only into ``.dev/`` (mode 0600).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from modelreg.devenv.node import NODE_NAME


@dataclass(frozen=True)
class Identity:
    """A user of the API server and the groups it belongs to."""

    name: str
    groups: tuple[str, ...] = ()
    #: A person gets a context in ``.dev/kubeconfig``; system components do not.
    person: bool = True


APPROVERS_GROUP = "ml-approvers"
DATA_SCIENTISTS_GROUP = "data-scientists"

#: The people of the contract's examples. RBAC lets all four of the non-admins create and
#: annotate ModelVersions in ``ml-demo``; only modelreg's admission webhook may stop them.
PEOPLE = (
    Identity("admin", ("system:masters",)),
    Identity("alice", (APPROVERS_GROUP,)),
    Identity("bob", (APPROVERS_GROUP,)),
    Identity("dana", (DATA_SCIENTISTS_GROUP,)),
    Identity("eve", ()),
)

#: Control-plane components, with the users their bootstrap RBAC roles are bound to.
SYSTEM = (
    Identity("system:kube-controller-manager", (), person=False),
    Identity("system:kube-scheduler", (), person=False),
    # KWOK plays every kubelet; in a dev cluster it may as well be cluster-admin.
    Identity("system:kwok", ("system:masters",), person=False),
    # the real node's kubelet (devenv/node.py), held to its own node by the Node authorizer
    Identity(f"system:node:{NODE_NAME}", ("system:nodes",), person=False),
)

ALL = PEOPLE + SYSTEM

DEMO_NAMESPACE = "ml-demo"
#: The operator's own namespace: what only it keeps (how far each model's version numbers
#: went); the people above have no rights in it.
OPERATOR_NAMESPACE = "modelreg-system"


def new_tokens(identities: tuple[Identity, ...] = ALL) -> dict[str, str]:
    """A fresh random bearer token for each identity."""
    return {i.name: secrets.token_urlsafe(32) for i in identities}


def token_file(tokens: Mapping[str, str], identities: tuple[Identity, ...] = ALL) -> str:
    """The kube-apiserver ``--token-auth-file``: ``token,user,uid[,"group1,group2"]``.

    A user without groups has no fourth column: an empty one would make a group "".
    """
    lines = []
    for i in identities:
        line = f"{tokens[i.name]},{i.name},{i.name}"
        if i.groups:
            line += ',"' + ",".join(i.groups) + '"'
        lines.append(line)
    return "\n".join(lines) + "\n"
