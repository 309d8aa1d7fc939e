"""The production-like stack (docker-compose.yaml + include/docker/), checked statically: no Docker needed.

Each test guards something a user would hit on `docker compose up`: a missing service or dependency, an
Airflow option that does not exist, an env that points the package at the wrong store, a connection that
does not parse, an image that does not install the locked set, a port that is not published; and what an
attacker would find: a credential in the repository, a default password, a port open beyond localhost, an
MLflow without authentication, local state or secrets in the image build context.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mlops.config import DEPLOYMENT_ONLY, load_settings, model_files
from mlops.training.pod_spec import looks_like_secret_key

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKER_DIR = ROOT / "include" / "docker"
GENERATE_ENV = DOCKER_DIR / "generate_env.py"
AIRFLOW_DOCKERFILE = DOCKER_DIR / "airflow.Dockerfile"
MLFLOW_DOCKERFILE = DOCKER_DIR / "mlflow.Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"

DEFAULT_AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
# Profile `celery` (docs/scaling.md): the broker and the workers, started only with `--profile celery`.
CELERY_PROFILE = "celery"
#: The MinIO user each Airflow component holds (least privilege; None: no object-store key at all).
OBJECT_STORE_ROLE = {
    "airflow-init": None,  # migrates the metadata DB
    "airflow-dag-processor": None,  # parses DAG files, runs DAG callbacks (Slack)
    "airflow-apiserver": "READER",  # the MLOps page reads the lake
    "airflow-triggerer": "READER",  # S3KeySensor's triggers read the lake
    "airflow-scheduler": "TASKS",  # runs the tasks with the LocalExecutor
    "airflow-worker": "TASKS",  # runs the tasks with the CeleryExecutor
}
#: The components that log in to MLflow: the task runners and the MLOps page.
MLFLOW_CLIENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-worker")
CELERY_SERVICES = ("redis", "airflow-worker")
AIRFLOW_SERVICES = (*DEFAULT_AIRFLOW_SERVICES, "airflow-worker")
REQUIRED_SERVICES = ("postgres", "minio", "minio-init", "mlflow", *AIRFLOW_SERVICES, "redis")
CELERY_PROVIDER = "apache-airflow-providers-celery"
#: Config sections a provider adds to Airflow's: their options are known once the provider is installed.
PROVIDER_SECTIONS = {"celery": CELERY_PROVIDER}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# Compose interpolation: $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, $NAME.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Resolve compose variables the way `docker compose config` does, with ``env`` as the shell/.env."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if unset else current
        if op in ("?", ":?"):
            if unset:
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return current
        if op in ("+", ":+"):
            return "" if unset else arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


@cache
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_generator() -> Any:
    """include/docker/generate_env.py (what `make secrets` runs) as a module."""
    spec = importlib.util.spec_from_file_location("generate_env", GENERATE_ENV)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines as docker compose reads an env file (comments and blank lines skipped)."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@cache
def generated_env() -> dict[str, str]:
    """One .env as `make secrets` writes it."""
    return dict(line.split("=", 1) for line in load_generator().render().splitlines() if not line.startswith("#"))


@cache
def compose() -> dict[str, Any]:
    """The file as `docker compose up` sees it after `make secrets`: the generated .env, other variables unset."""
    return interpolate(raw_compose(), generated_env())


def strings_of(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_of(value)]
    if isinstance(node, list):
        return [text for value in node for text in strings_of(value)]
    return [node] if isinstance(node, str) else []


def required_variables() -> set[str]:
    """Variables the file requires (``${NAME:?...}`` or ``${NAME?...}``): compose refuses to start without them."""
    return {match.group("name") for text in strings_of(raw_compose()) for match in _VARIABLE.finditer(text)
            if match.group("op") in ("?", ":?")}  # fmt: skip


def services() -> dict[str, Any]:
    return compose()["services"]


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def all_environments() -> dict[str, dict[str, str]]:
    envs = {name: environment(name) for name in services()}
    envs["x-airflow-common"] = {k: str(v) for k, v in compose()["x-airflow-common"]["environment"].items()}
    return envs


def command_args(service: str) -> list[str]:
    command = services()[service].get("command") or []
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]


def published_ports(service: str, file: dict[str, Any] | None = None) -> list[tuple[str | None, int]]:
    """(host address or None for every address, container port) of each published port."""
    ports = []
    for entry in (file or compose())["services"][service].get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            ports.append((entry.get("host_ip"), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")  # "[ip:]host:container[/proto]"
        ports.append((parts[0] if len(parts) == 3 else None, int(parts[-1])))
    return ports


def published_container_ports(service: str) -> set[int]:
    return {port for _, port in published_ports(service)}


def volume_mounts(service: str) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) for the short `source:target[:ro]` syntax."""
    mounts = {}
    for entry in services()[service].get("volumes") or []:
        source, target, *mode = entry.split(":")
        mounts[target] = (source, "ro" in mode)
    return mounts


def dockerfile_text(path: Path) -> str:
    """The Dockerfile with line continuations joined and ${ARG} references resolved to their defaults."""
    text = path.read_text().replace("\\\n", " ")
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.MULTILINE))
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), text)


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK_FILE.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@cache
def airflow_config_options() -> dict[str, set[str]]:
    """Sections and options of the installed Airflow's config template, read without importing Airflow."""
    spec = importlib.util.find_spec("airflow")
    assert spec and spec.submodule_search_locations, "apache-airflow is not installed in this environment"
    template = Path(next(iter(spec.submodule_search_locations))) / "config_templates" / "config.yml"
    config = yaml.safe_load(template.read_text())
    return {section: set((body or {}).get("options") or {}) for section, body in config.items()}


@cache
def provider_config_options(distribution: str) -> dict[str, set[str]] | None:
    """Sections and options a provider adds (``get_provider_info()``), read from its files; None if not installed."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    package = distribution.removeprefix("apache-airflow-providers-").replace("-", "/")
    path = Path(str(dist.locate_file(f"airflow/providers/{package}/get_provider_info.py")))
    spec = importlib.util.spec_from_file_location(f"provider_info_{package.replace('/', '_')}", path)
    assert spec and spec.loader, f"{distribution} is installed without {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # a literal dict: imports nothing from Airflow
    config = module.get_provider_info().get("config") or {}
    return {section: set((body or {}).get("options") or {}) for section, body in config.items()}


def profiles(service: str) -> list[str]:
    return list(services()[service].get("profiles") or [])


def default_services() -> set[str]:
    """What a plain `docker compose up` starts: the services that belong to no profile."""
    return {name for name in services() if not profiles(name)}


def test_compose_file_parses_and_defines_the_stack():
    assert isinstance(raw_compose(), dict), "docker-compose.yaml is not a YAML mapping"
    missing = [name for name in REQUIRED_SERVICES if name not in services()]
    assert not missing, f"services missing from docker-compose.yaml: {missing}"
    assert "x-airflow-common" in raw_compose(), "the shared Airflow settings (x-airflow-common) are gone"


def test_every_dependency_exists_waits_on_a_real_signal_and_there_is_no_cycle():
    graph: dict[str, list[str]] = {}
    for name, service in services().items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {target: {"condition": "service_started"} for target in depends_on}
        graph[name] = list(depends_on)
        for target, spec in depends_on.items():
            assert target in services(), f"{name} depends on {target!r}, which is not a service"
            condition = (spec or {}).get("condition", "service_started")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target} to be healthy: no healthcheck"
            if condition == "service_completed_successfully":
                assert services()[target].get("restart", "no") == "no", (
                    f"{target} is waited on to exit: restart must be 'no'"
                )

    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in visiting, f"depends_on cycle: {' -> '.join([*path, node])}"
        if node in done:
            return
        visiting.add(node)
        for target in graph[node]:
            visit(target, [*path, node])
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node, [])


def test_long_running_airflow_services_start_after_init_and_its_dependencies():
    for name in AIRFLOW_SERVICES[1:]:
        depends_on = services()[name]["depends_on"]
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name
    init_deps = services()["airflow-init"]["depends_on"]
    assert init_deps["postgres"]["condition"] == "service_healthy"
    assert services()["mlflow"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", ["postgres", "minio", "mlflow", "airflow-apiserver", "redis"])
def test_services_others_wait_on_have_healthchecks(service):
    test = services()[service].get("healthcheck", {}).get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL"), f"{service} has no usable healthcheck"


def test_airflow_services_run_one_image_with_the_shared_env_and_volumes():
    common = compose()["x-airflow-common"]
    assert common["build"]["dockerfile"] == "include/docker/airflow.Dockerfile"
    assert (ROOT / common["build"]["context"] / common["build"]["dockerfile"]).is_file()
    common_env = all_environments()["x-airflow-common"]
    for name in AIRFLOW_SERVICES:
        service = services()[name]
        assert service.get("build") == common["build"], f"{name} builds a different image"
        assert service.get("image") == common["image"], f"{name} runs a different image"
        env = environment(name)
        differing = {key for key, value in common_env.items() if env.get(key) != value}
        assert not differing, f"{name} does not carry the shared Airflow env: {sorted(differing)}"
        assert service.get("volumes") == common["volumes"], f"{name} mounts different volumes"
    # The anchor is really used (not a copy that drifts): each service merges it.
    text = COMPOSE_FILE.read_text()
    for name in AIRFLOW_SERVICES:
        block = re.search(rf"^  {name}:\n((?:(?:    .*)?\n)*)", text, flags=re.MULTILINE).group(1)
        assert re.search(r"^    <<: \*airflow-common$", block, flags=re.MULTILINE), f"{name} does not merge the anchor"


def test_every_airflow_option_set_by_env_exists_in_the_installed_airflow():
    options = {section: set(known) for section, known in airflow_config_options().items()}
    not_installed = set()
    for section, distribution in PROVIDER_SECTIONS.items():
        provided = provider_config_options(distribution)
        if provided is None:  # test_the_celery_profile_runs_an_image_with_the_celery_provider says so
            not_installed.add(section)
            continue
        for name, known in provided.items():
            options.setdefault(name, set()).update(known)
    unknown = []
    for where, env in all_environments().items():
        for key in env:
            match = re.fullmatch(r"AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)", key)
            if not match:
                continue
            section, option = match.group(1).lower(), match.group(2).lower()
            if section in not_installed:
                continue
            known = options.get(section, set())
            if option not in known and re.sub(r"_(cmd|secret)$", "", option) not in known:
                unknown.append(f"{where}: {key} ([{section}] {option})")
    assert not unknown, "options the installed Airflow does not know (typo or removed):\n" + "\n".join(unknown)


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_env_points_the_package_at_s3_dvc_on_s3_and_the_mlflow_server(service):
    env = environment(service)
    settings = load_settings(env=env)
    assert settings.lake_is_s3 and settings.lake_uri == "s3://lake/card_transactions"
    assert settings.dvc_remote_url == "s3://dvc/card_transactions"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert env["MLFLOW_TRACKING_URI"] == settings.mlflow_tracking_uri, "MLflow client and package disagree"
    assert settings.storage.s3_endpoint_url == "http://minio:9000"
    assert settings.s3_storage_options()["client_kwargs"]["endpoint_url"] == "http://minio:9000"
    assert str(settings.home) == env["MLOPS_HOME"] == "/opt/mlops/var"
    source, _ = volume_mounts(service)[env["MLOPS_HOME"]]
    assert source in compose()["volumes"], "MLOPS_HOME must be a named volume shared by the Airflow services"
    role = OBJECT_STORE_ROLE[service]
    if role is None:
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env, f"{service} needs no S3 key"
    else:
        assert env["AWS_ACCESS_KEY_ID"] == generated_env()[f"MINIO_{role}_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == generated_env()[f"MINIO_{role}_PASSWORD"]


def test_buckets_the_stack_uses_are_created_by_minio_init():
    script = " ".join(command_args("minio-init"))
    created = set(re.search(r"for bucket in ([\w\s-]+?);", script).group(1).split())
    env = environment("airflow-scheduler")
    used = {
        urlsplit(env["MLOPS__STORAGE__LAKE_ROOT"]).netloc,
        urlsplit(env["MLOPS__VERSIONING__REMOTE_URL"]).netloc,
        urlsplit(command_args("mlflow")[command_args("mlflow").index("--artifacts-destination") + 1]).netloc,
    }
    assert created == {"lake", "dvc", "mlflow"}
    assert used <= created, f"buckets used but never created: {used - created}"


def test_airflow_connections_parse_as_json_with_the_expected_type():
    env = environment("airflow-triggerer")
    expected = {"AIRFLOW_CONN_AWS_DEFAULT": "aws", "AIRFLOW_CONN_FS_DEFAULT": "fs"}
    assert set(expected) <= {key for key in env if key.startswith("AIRFLOW_CONN_")}
    for key in (key for key in env if key.startswith("AIRFLOW_CONN_")):
        conn = json.loads(env[key])
        assert conn["conn_type"] == expected.get(key, conn["conn_type"]), key
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://minio:9000", "the S3KeySensor would look in AWS, not MinIO"
    assert json.loads(env["AIRFLOW_CONN_FS_DEFAULT"])["extra"]["path"] == "/"


def test_service_urls_point_at_services_and_their_ports():
    env = environment("airflow-scheduler")
    execution = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution.hostname == "airflow-apiserver" and execution.path == "/execution/"
    assert execution.port in published_container_ports("airflow-apiserver")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "Airflow 3 components need one shared JWT secret"
    mlflow_args = command_args("mlflow")
    tracking = urlsplit(env["MLFLOW_TRACKING_URI"])
    assert tracking.hostname == "mlflow" and str(tracking.port) == mlflow_args[mlflow_args.index("--port") + 1]
    for key in ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "MLOPS__STORAGE__S3_ENDPOINT_URL"):
        endpoint = urlsplit(env[key])
        assert (endpoint.hostname, endpoint.port) == ("minio", 9000), key
    assert environment("mlflow")["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # MLflow >= 3.5 rejects Host headers it does not allow: the in-network name must be listed.
    allowed = environment("mlflow")["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert f"{tracking.hostname}:{tracking.port}" in allowed


def test_mlflow_server_command_uses_postgres_and_serves_s3_artifacts():
    args = command_args("mlflow")
    assert args[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in args
    assert args[args.index("--artifacts-destination") + 1].startswith("s3://")
    assert args[args.index("--host") + 1] == "0.0.0.0"  # inside its container; the host sees 127.0.0.1 only
    backend = urlsplit(args[args.index("--backend-store-uri") + 1])
    assert backend.scheme == "postgresql+psycopg2" and backend.hostname == "postgres"


@pytest.mark.parametrize(
    "url",
    [
        lambda: environment("airflow-apiserver")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        lambda: command_args("mlflow")[command_args("mlflow").index("--backend-store-uri") + 1],
        lambda: environment("airflow-scheduler")["MLOPS__REGISTRY__LEDGER_URI"],
    ],
    ids=["airflow", "mlflow", "ledger"],
)
def test_database_urls_match_the_roles_and_databases_postgres_creates(url):
    parsed = urlsplit(url())
    user, database = parsed.username, parsed.path.lstrip("/")
    assert parsed.scheme == "postgresql+psycopg2" and parsed.hostname == "postgres"
    postgres_env = environment("postgres")
    assert postgres_env[f"{user.upper()}_DB_PASSWORD"] == parsed.password, f"{user}: password differs from postgres'"
    sql = (DOCKER_DIR / "postgres-init.sql").read_text()
    assert re.search(rf"CREATE ROLE {user} LOGIN PASSWORD :'{user}_password';", sql)
    assert re.search(rf"\\getenv {user}_password {user.upper()}_DB_PASSWORD", sql)
    owner = f"{user}_owner" if database == "mlops" else user  # the ledger's runtime role owns nothing
    assert re.search(rf"CREATE DATABASE {database} OWNER {owner};", sql)


def test_the_ledger_has_an_owner_role_for_migrations_and_a_runtime_role_that_owns_nothing():
    """The platform logs in as a role that can append moves and move head rows but never drop a trigger."""
    from mlops.ledger_schema import RUNTIME_GRANTS, postgres_schema_sql

    url = urlsplit(environment("airflow-scheduler")["MLOPS__REGISTRY__LEDGER_URI"])
    runtime, database = url.username, url.path.lstrip("/")
    owner = f"{runtime}_owner"
    init = (DOCKER_DIR / "postgres-init.sql").read_text()
    assert f"CREATE ROLE {owner} NOLOGIN;" in init, "the owner cannot log in: migrations run as it by SET ROLE"
    assert f"CREATE DATABASE {database} OWNER {owner};" in init
    assert not re.search(rf"OWNER (TO )?{runtime}\b|GRANT {owner} TO|GRANT ALL", init)
    scripts = sorted((target, source) for target, (source, _) in volume_mounts("postgres").items()
                     if target.startswith("/docker-entrypoint-initdb.d/"))  # fmt: skip
    assert [Path(source).name for _, source in scripts] == ["postgres-init.sql", "ledger-schema.sql"]
    schema = (ROOT / scripts[1][1]).read_text()
    assert schema == postgres_schema_sql(database, owner, runtime), "regenerate include/docker/ledger-schema.sql"
    grants = {table: rights for rights, table in re.findall(rf"GRANT (.+) ON (\w+) TO {runtime};", schema)}
    assert grants == RUNTIME_GRANTS
    assert "UPDATE" not in "".join(rights for table, rights in RUNTIME_GRANTS.items() if table != "alias_heads")
    assert f"SET ROLE {owner};" in schema and not re.search(rf"OWNER TO {runtime}\b", schema)


def test_postgres_init_creates_the_three_databases():
    sql = (DOCKER_DIR / "postgres-init.sql").read_text()
    assert set(re.findall(r"CREATE DATABASE (\w+)", sql)) == {"airflow", "mlflow", "mlops"}
    assert compose()["services"]["postgres"]["image"].startswith("postgres:16")


def test_published_ports():
    assert 8080 in published_container_ports("airflow-apiserver")
    assert 5000 in published_container_ports("mlflow")
    assert {9000, 9001} <= published_container_ports("minio")
    api_health = " ".join(services()["airflow-apiserver"]["healthcheck"]["test"])
    assert "localhost:8080/api/v2/" in api_health


def test_dags_plugins_and_package_are_bind_mounted_read_only_where_airflow_looks():
    env = all_environments()["x-airflow-common"]
    for name in AIRFLOW_SERVICES:
        mounts = volume_mounts(name)
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == ("./dags", True), name
        assert mounts[env["AIRFLOW__CORE__PLUGINS_FOLDER"]] == ("./plugins", True), name  # for your own plugins
        assert mounts["/opt/mlops/include"] == ("./include", True), name
        assert mounts[env["AIRFLOW_HOME"]][0] in compose()["volumes"], f"{name}: logs must be shared"
    dockerfile = dockerfile_text(AIRFLOW_DOCKERFILE)
    assert "WORKDIR /opt/mlops" in dockerfile, "the package's editable install must live where include/ is mounted"


def host_path(service: str, container_path: str) -> Path:
    """Where a container path of ``service`` comes from on the host, through its bind mounts (longest target wins)."""
    for target, (source, _) in sorted(volume_mounts(service).items(), key=lambda item: -len(item[0])):
        if source.startswith("./") and (container_path == target or container_path.startswith(target + "/")):
            return ROOT / source / Path(container_path).relative_to(target)
    raise AssertionError(f"{service}: {container_path} is not on a bind mount of the repository")


def host_env(service: str) -> dict[str, str]:
    """The service's env with the models folder translated to where the bind mount takes it from."""
    env = environment(service)
    return {**env, "MLOPS_MODELS_DIR": str(host_path(service, env["MLOPS_MODELS_DIR"]))}


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_every_component_reads_the_same_models_folder_and_every_model_loads(service):
    """The scheduler, the dag-processor and the workers must agree on the models, or DAGs and tasks diverge."""
    env = environment(service)
    assert env["MLOPS_MODELS_DIR"] == all_environments()["x-airflow-common"]["MLOPS_MODELS_DIR"]
    folder = host_path(service, env["MLOPS_MODELS_DIR"])
    assert folder == ROOT / "include" / "models", "the models folder the repository ships"
    files = model_files(host_env(service))
    assert len(files) >= 2, f"expected the repository's model files in {folder}, found {sorted(files)}"
    lakes = {}
    for name in files:
        settings = load_settings(env=host_env(service), model=name)
        assert settings.model_name == name and settings.contract_path.is_file(), (name, settings.contract_path)
        lakes[name] = settings.lake_uri
    assert lakes == {name: f"s3://lake/{name}" for name in files}, "each model gets its own lake in the lake bucket"


def test_the_image_ships_the_models_folder_the_env_names():
    """Without the development mounts the image must still hold the model files and contracts it points at."""
    text = dockerfile_text(AIRFLOW_DOCKERFILE)
    folder = all_environments()["x-airflow-common"]["MLOPS_MODELS_DIR"]
    assert re.search(rf"\bMLOPS_MODELS_DIR={re.escape(folder)}\b", text), "the image and compose disagree"
    assert folder.startswith("/opt/mlops/include/") and re.search(r"^COPY include/ include/", text, flags=re.M)
    assert not dockerignored("include/models/card_transactions.yaml")


def test_env_sets_only_what_every_model_shares():
    """An env value wins over every model file: a per-model section (dataset, training, gates...) set here would
    silently give all models the same lake, window or gates."""
    for name in AIRFLOW_SERVICES:
        sections = {key.split("__")[1].lower() for key in environment(name) if key.startswith("MLOPS__")}
        assert sections <= set(DEPLOYMENT_ONLY), f"{name}: {sorted(sections - set(DEPLOYMENT_ONLY))} set for all models"


def test_airflow_dockerfile_installs_the_lock_and_the_project_as_non_root():
    text = dockerfile_text(AIRFLOW_DOCKERFILE)
    base = re.search(r"^FROM\s+(\S+)", text, flags=re.MULTILINE).group(1)
    assert base.startswith(("python:3.11-slim-bookworm", "apache/airflow:3.3.2-python3.11")), base
    assert re.search(r"apt-get install[^\n]*\bgit\b", text), "DVC needs git in the image"
    assert re.search(r"^COPY requirements\.lock ", text, flags=re.MULTILINE)
    assert re.search(r"uv pip sync[^\n]*requirements\.lock", text)
    assert f"uv=={lock_pins()['uv']}" in text, "the image's uv differs from the locked one"
    assert re.search(r"pip install[^\n]*--no-deps -e \.", text)
    for path in ("pyproject.toml", "include/", "dags/", "plugins/"):
        assert re.search(rf"^COPY [^\n]*\b{re.escape(path)}", text, flags=re.MULTILINE), f"{path} is not copied"
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user and user[-1] not in ("root", "0"), "the image must run as a non-root user"


def test_postgres_drivers_come_from_the_lock():
    """postgresql+psycopg2 URLs need psycopg2; Airflow 3 derives a postgresql+asyncpg engine and dies without it."""
    pins = lock_pins()
    assert "psycopg2-binary" in pins and "asyncpg" in pins
    for dockerfile in (AIRFLOW_DOCKERFILE, MLFLOW_DOCKERFILE):
        text = dockerfile_text(dockerfile)
        assert not re.search(r"psycopg2-binary==|asyncpg==", text), f"{dockerfile.name} pins a driver outside the lock"
        assert "psycopg2" in text, f"{dockerfile.name} does not check that psycopg2 imports"


def test_mlflow_dockerfile_installs_mlflow_and_boto3_at_the_locked_versions():
    text = dockerfile_text(MLFLOW_DOCKERFILE)
    pins = lock_pins()
    assert {"mlflow", "boto3"} <= set(pins)
    assert re.search(r"^COPY requirements\.lock ", text, flags=re.MULTILINE)
    install = re.search(r"uv pip install[^\n]*", text).group(0)
    assert re.search(r"(--constraint|-c) \S*requirements\.lock", install), "versions must come from the lock"
    for package in ("mlflow", "boto3"):
        # unpinned here (the lock constrains it) or pinned at exactly the locked version
        assert re.search(rf"\s{package}(=={re.escape(pins[package])})?(\s|$)", install), package
    assert compose()["services"]["mlflow"]["build"]["dockerfile"] == "include/docker/mlflow.Dockerfile"
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user and user[-1] not in ("root", "0")


def test_airflow_init_migrates_and_writes_the_password_file_the_api_server_reads():
    script = command_args("airflow-init")[-1]
    assert "airflow db migrate" in script
    python = re.search(r"<<'PY'\n(.*?)\nPY\n", script, flags=re.DOTALL).group(1)
    compile(python, "airflow-init", "exec")
    env = environment("airflow-init")
    assert 'os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]' in python
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{env['AIRFLOW_ADMIN_USERNAME']}:admin"
    passwords_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords_file.startswith(env["AIRFLOW_HOME"] + "/"), "the password file must be on the shared volume"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("service", ["airflow-init", "minio-init"])
def test_inline_shell_scripts_have_valid_syntax(service):
    script = command_args(service)[-1]
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_interpolation_follows_compose_rules():
    assert interpolate("${A:-x}", {}) == "x"
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("$${HOSTNAME} ${A}", {"A": "1"}) == "${HOSTNAME} 1"
    with pytest.raises(AssertionError, match=r"\$\{A\} is required: run make secrets"):
        interpolate("${A:?run make secrets}", {"A": ""})
    overridden = interpolate(raw_compose(), {**generated_env(), "MINIO_TASKS_USER": "prod-user"})
    assert overridden["services"]["minio-init"]["environment"]["MINIO_TASKS_USER"] == "prod-user"
    assert overridden["services"]["airflow-scheduler"]["environment"]["AWS_ACCESS_KEY_ID"] == "prod-user"


# -- no credential in the repository, nothing open beyond localhost ----------------------------------------------
def test_compose_refuses_to_start_without_the_generated_secrets():
    """No .env: `docker compose up` stops at the first secret and says to run `make secrets`."""
    with pytest.raises(AssertionError, match=r"is required: run `make secrets` to create \.env"):
        interpolate(raw_compose(), {})
    generated = set(generated_env())
    usernames = {name for name in generated if name.endswith("_USERNAME")}
    assert required_variables() == generated - usernames, "make secrets and the compose file disagree"
    for name in sorted(required_variables()):
        env = {key: value for key, value in generated_env().items() if key != name}
        with pytest.raises(AssertionError, match=rf"\$\{{{name}\}} is required"):
            interpolate(raw_compose(), env)


def test_no_credential_is_written_in_the_compose_file():
    """Every secret-looking value, URL password and S3 key comes from a required variable, never a literal."""
    file = with_required_shown(raw_compose())
    envs = {name: dict(service.get("environment") or {}) for name, service in file["services"].items()}
    envs["x-airflow-common"] = dict(file["x-airflow-common"]["environment"])
    checked = 0
    for where, env in envs.items():
        for key, value in env.items():
            value = str(value)
            names_a_file = key.endswith(("_FILE", "_PATH"))  # where a secret is kept, not a secret
            if (looks_like_secret_key(key) and not names_a_file) or key.endswith("_ROOT_USER"):
                assert re.fullmatch(r"<[A-Z_]+>", value), f"{where}: {key} is a literal {value!r}"
                checked += 1
            for url in re.findall(r"\w[\w+.-]*://\S+", value):
                password = urlsplit(url).password
                assert password is None or re.fullmatch(r"<[A-Z_]+_PASSWORD>", password), f"{where}: {key}"
    commands = {name: strings_of(service.get("command")) for name, service in file["services"].items()}
    for where, texts in commands.items():
        for url in (url for text in texts for url in re.findall(r"\w[\w+.-]*://\S+", text)):
            password = urlsplit(url).password
            assert password is None or re.fullmatch(r"<[A-Z_]+_PASSWORD>", password), f"{where}: {url}"
    backend = commands["mlflow"][commands["mlflow"].index("--backend-store-uri") + 1]
    assert urlsplit(backend).password == "<MLFLOW_DB_PASSWORD>"
    assert checked >= 15, "the secret-looking keys were not found: did the environment move?"
    text = COMPOSE_FILE.read_text()
    for leaked in ("minio-dev-secret", "change-me", "admin:admin@", "POSTGRES_PASSWORD: postgres"):
        assert leaked not in text


def with_required_shown(node: Any) -> Any:
    """The file with every required variable shown as ``<NAME>`` and every other one at its default."""
    if isinstance(node, dict):
        return {key: with_required_shown(value) for key, value in node.items()}
    if isinstance(node, list):
        return [with_required_shown(value) for value in node]
    if not isinstance(node, str):
        return node
    return interpolate(re.sub(r"\$\{([A-Za-z_]\w*):?\?[^}]*\}", r"<\1>", node), {})


def test_make_secrets_writes_a_private_env_once_with_random_values(tmp_path: Path):
    target = tmp_path / ".env"
    make = ["make", "-s", "-C", str(ROOT), "secrets", f"ENV_FILE={target}", f"PYTHON={sys.executable}"]
    first = subprocess.run(make, capture_output=True, text=True, check=True)
    assert "wrote" in first.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "the secrets file must be readable by its owner only"
    env = read_env_file(target)
    assert set(env) == set(generated_env())
    secret_values = [value for name, value in env.items() if not name.endswith("_USERNAME")]
    assert len(set(secret_values)) == len(secret_values), "every secret is generated on its own"
    for name, value in env.items():
        assert re.fullmatch(r"[A-Za-z0-9_=-]+", value), f"{name} is not URL-safe: it goes into database URLs"
        if not name.endswith(("_USERNAME", "_USER")):
            assert len(value) >= 32, f"{name} is too short to be a secret"
    from cryptography.fernet import Fernet

    Fernet(env["AIRFLOW_FERNET_KEY"])  # a valid key, or Airflow cannot encrypt connections
    assert env != generated_env() and read_env_file(target) != dict(generated_env()), "values must be random"
    interpolate(raw_compose(), env)  # compose starts with it

    before = target.read_bytes()
    second = subprocess.run(make, capture_output=True, text=True, check=True)
    assert "left untouched" in second.stdout and target.read_bytes() == before, "an existing .env is never replaced"

    # An .env from before a variable existed: compose would refuse to start; make secrets adds it, keeps the rest.
    older = {name: value for name, value in env.items() if not name.startswith("MINIO_TASKS_")}
    target.write_text("".join(f"{name}={value}\n" for name, value in older.items()))
    third = subprocess.run(make, capture_output=True, text=True, check=True)
    assert "MINIO_TASKS_USER, MINIO_TASKS_PASSWORD" in third.stdout, third.stdout
    upgraded = read_env_file(target)
    assert {name: upgraded[name] for name in older} == older and set(upgraded) == set(generated_env())
    interpolate(raw_compose(), upgraded)


def test_the_secrets_file_stays_out_of_git_and_out_of_images():
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
        assert ignored.returncode == 0, ".env is not ignored by git"
    for path in (".env", ".venv/bin/python", "var/lake/raw/x.parquet", ".git/HEAD", "include/mlops/__pycache__/x.pyc"):
        assert dockerignored(path), f"{path} is sent to the Docker daemon with the build context"
    for path in ("requirements.lock", "pyproject.toml", "README.md", "include/mlops/config.py", "dags/x.py",
                 "plugins/x.py", "include/contracts/card_transactions.yaml"):  # fmt: skip
        assert not dockerignored(path), f"{path} is copied by a Dockerfile but excluded from the build context"


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (.dockerignore: last matching rule wins)."""
    import fnmatch

    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def test_published_ports_listen_on_localhost_unless_configured():
    for name in services():
        for address, port in published_ports(name):
            assert address == "127.0.0.1", f"{name} publishes {port} on {address or 'every address'}"
    assert published_ports("postgres") == [], "the databases are reachable only inside the compose network"
    exposed = interpolate(raw_compose(), {**generated_env(), "MLOPS_BIND_ADDRESS": "0.0.0.0"})
    assert {address for address, _ in published_ports("airflow-apiserver", exposed)} == {"0.0.0.0"}


def test_the_promotion_ledger_is_on_postgres_in_every_airflow_component():
    ledgers = {load_settings(env=environment(name)).ledger_uri for name in AIRFLOW_SERVICES}
    assert len(ledgers) == 1, "every component must record promotions in the same ledger"
    (uri,) = ledgers
    parsed = urlsplit(uri)
    expected = ("postgresql+psycopg2", "postgres", "mlops", "/mlops")
    assert (parsed.scheme, parsed.hostname, parsed.username, parsed.path) == expected
    assert parsed.password == environment("postgres")["MLOPS_DB_PASSWORD"]


def test_mlflow_requires_a_login_and_the_airflow_clients_have_one(monkeypatch: pytest.MonkeyPatch):
    args = command_args("mlflow")
    assert args[args.index("--app-name") + 1] == "basic-auth", "an unauthenticated MLflow is open to the network"
    env = environment("mlflow")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == generated_env()["MLFLOW_ADMIN_PASSWORD"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"], "the auth app refuses to start without a session key"
    config_path = env["MLFLOW_AUTH_CONFIG_PATH"]
    mounts = volume_mounts("mlflow")
    source, read_only = mounts[config_path]
    assert read_only and (ROOT / source).is_file()
    ini = configparser.ConfigParser()
    ini.read(ROOT / source)
    assert "admin_password" not in ini["mlflow"], "the admin password comes from the environment, never a file"

    # MLflow's own reader of the file (its module alone, as the server loads it).
    reader = importlib.util.find_spec("mlflow")
    assert reader and reader.submodule_search_locations
    path = Path(next(iter(reader.submodule_search_locations))) / "server" / "auth" / "config.py"
    spec = importlib.util.spec_from_file_location("mlflow_auth_config", path)
    assert spec and spec.loader
    auth_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(auth_config)
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ROOT / source))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", env["MLFLOW_AUTH_ADMIN_PASSWORD"])
    config = auth_config.read_auth_config()  # the file is what the server will load
    assert config.admin_password == env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert config.default_permission == "NO_PERMISSIONS"
    store = config.database_uri.removeprefix("sqlite:///")
    assert config.database_uri.startswith("sqlite:////") and os.path.dirname(store) in mounts
    assert mounts[os.path.dirname(store)][0] in compose()["volumes"], "the user store must survive a restart"
    dockerfile = dockerfile_text(MLFLOW_DOCKERFILE)
    assert "mkdir -p /var/lib/mlflow-auth" in dockerfile
    assert re.search(r"uv pip install[^\n]*\bflask-wtf\b", dockerfile), "the basic-auth app needs Flask-WTF"
    # The Airflow components log in as the users mlflow-users makes (never the admin): tasks write, the page reads.
    from mlops.mlflow_users import logins

    users = environment("mlflow-users")
    assert command_args("mlflow-users")[-2:] == ["-m", "mlops.mlflow_users"]
    assert users["MLFLOW_AUTH_ADMIN_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    made = {login.username: login for login in logins(users)}
    roles = {
        "airflow-apiserver": "mlops-reader",
        "airflow-scheduler": "mlops-pipeline",
        "airflow-worker": "mlops-pipeline",
    }
    for name in MLFLOW_CLIENTS:
        client = environment(name)
        login = made.get(client["MLFLOW_TRACKING_USERNAME"])
        assert login is not None, f"{name} logs in as {client['MLFLOW_TRACKING_USERNAME']!r}, a user nobody makes"
        assert (login.password, login.role) == (client["MLFLOW_TRACKING_PASSWORD"], roles[name]), name
    admin_holders = {name for name, values in all_environments().items()
                     if env["MLFLOW_AUTH_ADMIN_PASSWORD"] in values.values()}  # fmt: skip
    assert admin_holders == {"mlflow", "mlflow-users"}, "MLflow's admin login must stay out of Airflow"
    for name in set(AIRFLOW_SERVICES) - set(MLFLOW_CLIENTS):
        assert "MLFLOW_TRACKING_PASSWORD" not in environment(name), f"{name} never talks to MLflow"
    health = " ".join(services()["mlflow"]["healthcheck"]["test"])
    assert "/health" in health, "the healthcheck must use the one route basic auth leaves open"


# -- profile `celery`: scale-out on this engine (docs/scaling.md) -------------------------------------------------
def test_the_default_stack_is_what_it_was_and_never_needs_the_celery_profile():
    """`docker compose up` without a profile: no broker, no worker, LocalExecutor; nothing waits on a profiled one."""
    default = default_services()
    assert not set(CELERY_SERVICES) & default, "redis and airflow-worker must start only with --profile celery"
    assert set(REQUIRED_SERVICES) - set(CELERY_SERVICES) <= default
    for name in CELERY_SERVICES:
        assert profiles(name) == [CELERY_PROFILE], name
    for name in default:
        waits_on = set(services()[name].get("depends_on") or {})
        # compose refuses to start a service whose dependency belongs to a disabled profile
        assert waits_on <= default, f"{name} depends on {sorted(waits_on - default)}, outside the default stack"
    for name in DEFAULT_AIRFLOW_SERVICES:
        assert environment(name)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
    assert (ROOT / "docs" / "scaling.md").is_file(), "the compose file points to docs/scaling.md"


def test_one_variable_switches_every_airflow_component_to_celery():
    celery = interpolate(raw_compose(), {**generated_env(), "AIRFLOW_EXECUTOR": "CeleryExecutor"})
    for name in AIRFLOW_SERVICES:
        assert celery["services"][name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
    # The name Airflow resolves to the provider's executor, the module the worker's healthcheck pings.
    spec = importlib.util.find_spec("airflow")
    assert spec and spec.submodule_search_locations
    loader = (Path(next(iter(spec.submodule_search_locations))) / "executors" / "executor_loader.py").read_text()
    constants = (Path(next(iter(spec.submodule_search_locations))) / "executors" / "executor_constants.py").read_text()
    assert 'CELERY_EXECUTOR = "CeleryExecutor"' in constants
    module = re.search(r'CELERY_EXECUTOR: "([\w.]+)\.CeleryExecutor"', loader).group(1)
    health = " ".join(services()["airflow-worker"]["healthcheck"]["test"])
    assert f"--app {module}.app " in health, "the healthcheck must ping the app CeleryExecutor sends to"


def test_redis_broker_is_pinned_private_password_protected_and_healthchecked():
    redis = services()["redis"]
    image, _, tag = redis["image"].rpartition(":")
    assert image.endswith("redis") and re.match(r"\d+\.\d+", tag), f"pin the broker's image: {redis['image']}"
    assert published_ports("redis") == [], "the broker is reachable only inside the compose network"
    args = command_args("redis")
    assert args[0] == "redis-server" and "--port" not in args
    password = args[args.index("--requirepass") + 1]
    shown = with_required_shown(raw_compose())["services"]["redis"]["command"]
    assert re.fullmatch(r"<[A-Z_]+_PASSWORD>", shown[shown.index("--requirepass") + 1]), "the password comes from .env"
    assert password in generated_env().values()
    assert environment("redis")["REDISCLI_AUTH"] == password, "the healthcheck's redis-cli must log in"
    test = redis["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "redis-cli ping" in test[1] and "PONG" in test[1], test
    for name in AIRFLOW_SERVICES:
        broker = urlsplit(environment(name)["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379), name
        assert broker.password == password, f"{name}: the broker URL's password is not redis' --requirepass"
    passwordless = re.search(r"redis://(redis|localhost|127\.0\.0\.1)[:/]", COMPOSE_FILE.read_text())
    assert not passwordless, "a broker URL without a password"


def test_celery_result_backend_is_the_airflow_metadata_db():
    for name in AIRFLOW_SERVICES:
        env = environment(name)
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert backend.scheme == "db+postgresql", name
        parts = ("username", "password", "hostname", "port", "path")
        assert [getattr(backend, part) for part in parts] == [getattr(metadata, part) for part in parts], name


def test_celery_worker_runs_the_shared_airflow_setup_after_redis_and_postgres_and_scales():
    worker = services()["airflow-worker"]
    assert command_args("airflow-worker") == ["airflow", "celery", "worker"]
    expected = {
        "redis": "service_healthy",
        "postgres": "service_healthy",
        "airflow-init": "service_completed_successfully",
        "airflow-apiserver": "service_healthy",  # task code reaches the metadata DB only through its API
    }
    for target, condition in expected.items():
        assert worker["depends_on"][target]["condition"] == condition, target
    # `--scale airflow-worker=N` needs identical replicas: no fixed name, no host port.
    assert "container_name" not in worker and "hostname" not in worker
    assert published_ports("airflow-worker") == []
    health = " ".join(worker["healthcheck"]["test"])
    assert "inspect ping" in health and '"celery@${HOSTNAME}"' in health, "ping this replica, not any worker"
    assert int(environment("airflow-worker")["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) >= 1


def test_the_celery_profile_runs_an_image_with_the_celery_provider():
    """CeleryExecutor and `airflow celery worker` come from the provider; the image installs the lock."""
    pins = lock_pins()
    assert CELERY_PROVIDER in pins, f"--profile celery needs {CELERY_PROVIDER} in requirements.txt"
    assert "redis" in pins, "the redis:// broker needs the redis client (celery[redis], via the provider)"


# -- least privilege: each service holds only the credentials it uses ----------------------------------------------
def test_the_object_store_root_keys_stay_in_minio_and_its_init_job():
    root = {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    holders = {
        name
        for name, service in raw_compose()["services"].items()
        if {match.group("name") for text in strings_of(service) for match in _VARIABLE.finditer(text)} & root
    }
    assert holders == {"minio", "minio-init"}
    values = {generated_env()[name] for name in root}
    for name in services():
        if name not in holders:
            assert not values & set(environment(name).values()), f"{name} holds MinIO's root keys"
    anchors = {key: value for key, value in raw_compose().items() if key.startswith("x-")}
    assert not any(name in text for text in strings_of(anchors) for name in root), "an anchor carries the root keys"


def test_only_the_task_runners_hold_the_object_store_write_keys():
    tasks = generated_env()["MINIO_TASKS_PASSWORD"]
    holders = {name for name in services() if tasks in environment(name).values()}
    assert holders == {name for name, role in OBJECT_STORE_ROLE.items() if role == "TASKS"} | {"minio-init"}
    assert set(OBJECT_STORE_ROLE) == set(AIRFLOW_SERVICES), "say which MinIO user a new Airflow component holds"
    mlflow = environment("mlflow")
    assert mlflow["AWS_ACCESS_KEY_ID"] == generated_env()["MINIO_MLFLOW_USER"], "MLflow's artifact store user"


def _minio_init_calls(tmp_path: Path) -> tuple[list[list[str]], dict[str, dict[str, Any]]]:
    """Run minio-init's script with a stand-in for the MinIO client on PATH: its calls and the policies it writes."""
    script = command_args("minio-init")[0]
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\0" "$@" >> "$MC_CALLS"; printf "\\n" >> "$MC_CALLS"\n'
                    'if [ "$1 $2 $3" = "admin policy create" ]; then cp "$6" "$MC_POLICIES/$5.json"; fi\n')  # fmt: skip
    fake.chmod(0o755)
    (tmp_path / "policies").mkdir()
    env = {**environment("minio-init"), "PATH": f"{fake.parent}:{os.environ['PATH']}",
           "MC_CALLS": str(tmp_path / "calls"), "MC_POLICIES": str(tmp_path / "policies")}  # fmt: skip
    subprocess.run(["sh", "-c", script], env=env, check=True, capture_output=True, text=True)
    calls = [line.strip("\0").split("\0") for line in (tmp_path / "calls").read_text().splitlines() if line]
    policies = {path.stem: json.loads(path.read_text()) for path in (tmp_path / "policies").glob("*.json")}
    return calls, policies


def _buckets_and_actions(policy: dict[str, Any]) -> tuple[set[str], set[str]]:
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    buckets = {resource.removeprefix("arn:aws:s3:::").split("/")[0] for resource in statement["Resource"]}
    return buckets, set(statement["Action"])


def test_minio_init_gives_each_role_a_user_limited_to_its_buckets(tmp_path: Path):
    calls, policies = _minio_init_calls(tmp_path)
    gen = generated_env()
    tasks, reader, mlflow = (_buckets_and_actions(policies[name]) for name in ("mlops-tasks", "mlops-reader",
                                                                              "mlflow-artifacts"))  # fmt: skip
    env = environment("airflow-scheduler")
    lake, dvc = urlsplit(env["MLOPS__STORAGE__LAKE_ROOT"]).netloc, urlsplit(env["MLOPS__VERSIONING__REMOTE_URL"]).netloc
    assert tasks[0] == {lake, dvc} and reader[0] == {lake} and mlflow[0] == {"mlflow"}
    assert "s3:PutObject" in tasks[1] and "s3:DeleteObject" in tasks[1]
    assert reader[1] == {"s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"}, "the reader writes nothing"
    assert not any("*" in action for _, actions in (tasks, reader, mlflow) for action in actions)
    for role, policy in (("TASKS", "mlops-tasks"), ("READER", "mlops-reader"), ("MLFLOW", "mlflow-artifacts")):
        user, password = gen[f"MINIO_{role}_USER"], gen[f"MINIO_{role}_PASSWORD"]
        assert ["admin", "user", "add", "local", user, password] in calls
        assert ["admin", "policy", "attach", "local", policy, "--user", user] in calls
