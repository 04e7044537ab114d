"""The Data tab's configuration: Rucio instances as traitlets, parsed into plain records.

A facility lists its Rucio instances in the single-user server's config::

    c.RucioPanel.instances = [
        {"name": "atlas", "url": "https://rucio.example.org", "auth": "oidc",
         "account": "{username}", "replica_requests": True,
         "destination_rses": ["MY_SITE_SCRATCHDISK"]},
    ]

``parse_instance`` turns one entry into an :class:`InstanceConfig` (a pure function,
table-tested) and names the key and the fix when an entry is wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from traitlets import Dict, Float, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

AUTH_TYPES = ("oidc", "userpass", "x509")
INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
RESERVED_NAMES = {"instances", "downloads"}  # route names under jhub-af/rucio/
KNOWN_KEYS = {
    "name",
    "url",
    "auth_url",
    "account",
    "vo",
    "auth",
    "username",
    "password",
    "token_file",
    "proxy_path",
    "ca_cert",
    "replica_requests",
    "destination_rses",
    "allow_insecure_http",
}


class ConfigError(ValueError):
    """An entry of ``RucioPanel.instances`` is wrong; the message names the key."""


@dataclass(frozen=True)
class InstanceConfig:
    """One Rucio instance, parsed and checked by :func:`parse_instance`; its secrets
    stay in the server (:meth:`public` is what the browser sees)."""

    name: str
    url: str
    auth_url: str
    account: str
    auth: str
    vo: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    token_file: str = ""
    proxy_path: str = ""
    ca_cert: str = ""
    replica_requests: bool = False
    destination_rses: tuple[str, ...] = ()
    allow_insecure_http: bool = False

    def public(self) -> dict:
        """What the panel may see: never a secret or a local path."""
        return {
            "name": self.name,
            "url": self.url,
            "auth": self.auth,
            "replica_requests": self.replica_requests,
            "destination_rses": list(self.destination_rses),
        }


def _url(value, key: str, where: str, insecure: bool) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise ConfigError(
            f"{where}: '{key}' must be an http(s) URL such as https://rucio.example.org"
        )
    if value[:5].lower() == "http:" and not insecure:
        # tokens and passwords would cross the network in clear, and anyone on the
        # path could answer as Rucio (and redirect the panel wherever they like)
        raise ConfigError(
            f"{where}: '{key}' is plain http ({value}), which would send Rucio tokens and "
            "passwords in clear text; use https://, or set 'allow_insecure_http': true on "
            "this instance (test setups on a trusted network only)"
        )
    return value.rstrip("/")


def parse_instance(entry: dict, username: str = "") -> InstanceConfig:
    """One ``RucioPanel.instances`` entry -> InstanceConfig; ``{username}`` in
    ``account`` and ``username`` becomes the JupyterHub user's name."""
    if not isinstance(entry, dict):
        raise ConfigError("RucioPanel.instances: each entry must be a dict with name, url and auth")
    name = entry.get("name")
    if not isinstance(name, str) or not INSTANCE_NAME.match(name) or name in RESERVED_NAMES:
        raise ConfigError(
            f"RucioPanel.instances: name {name!r} must be letters, digits, '.', '_' or '-' "
            f"(at most 63) and not one of {sorted(RESERVED_NAMES)}"
        )
    where = f"RucioPanel.instances[{name}]"
    unknown = sorted(set(entry) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(KNOWN_KEYS)}")
    insecure = entry.get("allow_insecure_http", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{where}: 'allow_insecure_http' must be true or false")
    url = _url(entry.get("url"), "url", where, insecure)
    auth_url = _url(entry.get("auth_url") or url, "auth_url", where, insecure)
    auth = entry.get("auth")
    if auth not in AUTH_TYPES:
        raise ConfigError(f"{where}: 'auth' must be one of {list(AUTH_TYPES)}, not {auth!r}")
    account = str(entry.get("account") or "").replace("{username}", username)
    if not account:
        raise ConfigError(
            f"{where}: 'account' is required (the Rucio account, e.g. '{{username}}')"
        )
    user = str(entry.get("username") or "").replace("{username}", username)
    password = entry.get("password") or ""
    if auth == "userpass" and not (user and password):
        raise ConfigError(f"{where}: auth 'userpass' needs 'username' and 'password'")
    rses = entry.get("destination_rses") or []
    if not isinstance(rses, list) or not all(isinstance(r, str) and r for r in rses):
        raise ConfigError(f"{where}: 'destination_rses' must be a list of RSE names")
    replica_requests = entry.get("replica_requests", False)
    if not isinstance(replica_requests, bool):
        raise ConfigError(f"{where}: 'replica_requests' must be true or false")
    if replica_requests and not rses:
        raise ConfigError(f"{where}: 'replica_requests' needs at least one of 'destination_rses'")
    return InstanceConfig(
        name=name,
        url=url,
        auth_url=auth_url,
        account=account,
        auth=auth,
        vo=str(entry.get("vo") or ""),
        username=user,
        password=str(password),
        token_file=str(entry.get("token_file") or ""),
        proxy_path=str(entry.get("proxy_path") or ""),
        ca_cert=str(entry.get("ca_cert") or ""),
        replica_requests=replica_requests,
        destination_rses=tuple(rses),
        allow_insecure_http=insecure,
    )


class RucioPanel(LoggingConfigurable):
    """The Data tab of the JupyterLab panel: which Rucio instances it browses and how."""

    instances = List(
        Dict(),
        config=True,
        help="""The Rucio instances the Data tab offers, one dict each (default: none, and
        the tab says so). Keys: ``name`` (shown, and used in URLs), ``url`` (the Rucio
        server), ``auth_url`` (its auth server, default ``url``), ``account``
        (``{username}`` becomes the hub user's name), ``vo`` (multi-VO Rucio only),
        ``auth``: ``"oidc"`` (the user's IAM token from ``$BEARER_TOKEN_FILE``, kept
        fresh by jhub_af; or ``token_file``), ``"userpass"`` (``username``,
        ``password``) or ``"x509"`` (``proxy_path``, default ``$X509_USER_PROXY`` or
        ``/tmp/x509up_u<uid>``); ``ca_cert`` (a CA bundle or directory for the
        server's and the storage's TLS); ``replica_requests`` (bool, default false)
        and ``destination_rses`` (the RSEs users may ask for replicas on);
        ``allow_insecure_http`` (bool, default false): ``url`` and ``auth_url`` must
        be ``https://`` unless this is true, which is for test setups on a trusted
        network only (tokens and passwords then cross it in clear). Example:
        ``[{"name": "atlas", "url": "https://rucio.example.org", "auth": "oidc",
        "account": "{username}"}]``.""",
    )

    download_root = Unicode(
        config=True,
        help="""The folder downloads go into; targets are relative to it and may not
        leave it (no '..', no absolute paths, no symbolic links out). Default: the
        server's root_dir (the user's home).""",
    )

    page_size = Int(
        100, min=1, config=True, help="Items per page when the panel asks for none (default 100)."
    )

    max_page_size = Int(
        1000,
        min=1,
        config=True,
        help="The largest page the panel may ask for (default 1000); bigger requests get 400.",
    )

    timeout_seconds = Float(
        30,
        min=1,
        config=True,
        help="Seconds to wait for Rucio to connect or to send the next bytes (default 30).",
    )

    @default("download_root")
    def _default_download_root(self):
        root = getattr(self.parent, "root_dir", None)
        return os.path.expanduser(root or "~")

    @validate("instances")
    def _check_instances(self, proposal):
        names = set()
        for entry in proposal.value:
            # checked before the user is known: keep the placeholder
            parsed = parse_instance(entry, username="{username}")
            if parsed.name in names:
                raise ConfigError(f"RucioPanel.instances: the name {parsed.name!r} is used twice")
            names.add(parsed.name)
        return proposal.value

    def parsed_instances(self, username: str = "") -> dict[str, InstanceConfig]:
        """The instances by name, with ``{username}`` filled in for ``username``;
        raises :class:`ConfigError` naming a wrong entry. Called once per server by
        the Data tab's handlers."""
        return {i.name: i for i in (parse_instance(e, username) for e in self.instances)}
