"""MLflow logins for a deployment that runs MLflow's basic-auth app: the platform never works as the admin.

The compose stack's one-shot ``mlflow-users`` service runs this once the MLflow server is healthy, with the
admin's login (which only the ``mlflow`` server and this service hold). It makes, idempotently:

* the **pipeline** user (``MLOPS_MLFLOW_PIPELINE_USERNAME``, default ``mlops``), the login of the tasks
  (scheduler / workers): role ``mlops-pipeline``, EDIT on every experiment (runs, metrics, artifacts, logged
  models) and MANAGE on every registered model (versions and aliases: deleting an alias needs MANAGE);
* the **reader** user (``MLOPS_MLFLOW_READER_USERNAME``, default ``mlops-reader``), the login of the api-server
  (the MLOps page): role ``mlops-reader``, READ on every experiment and registered model.

Neither is an MLflow admin: neither can create users, make itself admin or change a role, so a leaked task
login cannot make itself more. (MLflow lets only MANAGE delete an alias, and MANAGE on a registered model also
shares that model with other users: the pipeline can do that for models, never for experiments.) Experiments
and models the admin created before (an upgrade) are covered by the roles' ``*`` patterns. A password changed
in the environment is applied on the next run (rotation). The roles' patterns cover every experiment and model
of this MLflow server: the stack's own server. On an MLflow shared with other teams, give these users
per-resource grants instead (docs/production.md).

    python -m mlops.mlflow_users [--tracking-uri URL]

Env: ``MLFLOW_TRACKING_URI`` (or ``--tracking-uri``), ``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD``,
``MLOPS_MLFLOW_PIPELINE_PASSWORD``, ``MLOPS_MLFLOW_READER_PASSWORD`` (and the two optional user names).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mlops.mlflow_users")

#: The workspace MLflow puts every resource in when workspaces are not enabled.
WORKSPACE = "default"


@dataclass(frozen=True)
class Login:
    """One platform user of MLflow and the role that says what it may do."""

    username: str
    password: str
    role: str
    #: resource type -> permission, on every resource of the type (pattern ``*``)
    permissions: Mapping[str, str]


def logins(env: Mapping[str, str]) -> list[Login]:
    """The pipeline's and the reader's logins from the environment; a missing password is named."""
    wanted = {
        "pipeline": ("mlops", "mlops-pipeline", {"experiment": "EDIT", "registered_model": "MANAGE"}),
        "reader": ("mlops-reader", "mlops-reader", {"experiment": "READ", "registered_model": "READ"}),
    }
    result = []
    for kind, (default_user, role, permissions) in wanted.items():
        prefix = f"MLOPS_MLFLOW_{kind.upper()}"
        password = env.get(f"{prefix}_PASSWORD", "")
        if not password:
            raise SystemExit(f"mlflow_users: {prefix}_PASSWORD is not set (run `make secrets`)")
        result.append(Login(env.get(f"{prefix}_USERNAME") or default_user, password, role, permissions))
    return result


def ensure_user(auth: Any, login: Login) -> str:
    """Create the user, or set its password (rotation) when it exists; never an admin."""
    from mlflow.exceptions import RestException

    try:
        auth.get_user(login.username)
    except RestException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(login.username, login.password)
        return "created"
    auth.update_user_password(login.username, login.password)
    auth.update_user_admin(login.username, False)
    return "password set"


def ensure_role(auth: Any, login: Login) -> int:
    """The login's role in the default workspace with exactly its ``*`` permissions, assigned to the user."""
    roles = {role.name: role for role in auth.list_roles(WORKSPACE)}
    role = roles.get(login.role) or auth.create_role(WORKSPACE, login.role, f"mlops platform: {login.role}")
    have = {(p.resource_type, p.resource_pattern): p for p in _role_permissions(auth, role.id)}
    for resource_type, permission in login.permissions.items():
        existing = have.get((resource_type, "*"))
        if existing is None:
            auth.add_role_permission(role.id, resource_type, "*", permission)
        elif existing.permission != permission:
            auth.update_role_permission(existing.id, permission)
    if login.role not in {r.name for r in auth.list_user_roles(login.username)}:
        auth.assign_role(login.username, role.id)
    return int(role.id)


def _role_permissions(auth: Any, role_id: int) -> list[Any]:
    """A role's permissions. MLflow 3.17's client parses the list response with the wrong key, so this reads the
    same endpoint through the client's own request helper."""
    from mlflow.server.auth.entities import RolePermission
    from mlflow.server.auth.routes import LIST_ROLE_PERMISSIONS

    response = auth._request(LIST_ROLE_PERMISSIONS, "GET", params={"role_id": str(role_id)})
    return [RolePermission.from_json(p) for p in response.get("role_permissions", [])]


def provision(tracking_uri: str, env: Mapping[str, str]) -> list[str]:
    """Make every platform login as the admin; returns one line per login saying what was done."""
    from mlflow.server import get_app_client

    admin_user, admin_password = env.get("MLFLOW_AUTH_ADMIN_USERNAME", ""), env.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    if not (admin_user and admin_password):
        raise SystemExit("mlflow_users: MLFLOW_AUTH_ADMIN_USERNAME and MLFLOW_AUTH_ADMIN_PASSWORD must be set")
    wanted = logins(env)
    # The auth client reads the login from these variables; the admin's stays in this process only.
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = admin_user, admin_password
    auth = get_app_client("basic-auth", tracking_uri=tracking_uri)
    lines = []
    for login in wanted:
        done = ensure_user(auth, login)
        ensure_role(auth, login)
        granted = ", ".join(f"{p} on every {t}" for t, p in login.permissions.items())
        lines.append(f"{login.username}: {done}, not admin, role {login.role} ({granted})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.mlflow_users", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="the MLflow server (default: $MLFLOW_TRACKING_URI)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("no MLflow server: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    for line in provision(args.tracking_uri, os.environ):
        print(f"mlflow_users: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
