"""ProfileSpawner: the form, validation on every start, dispatch to a backend spawner,
and the server's af-accounting reservation (:class:`jhub_af.accounting.SpawnReservation`).
"""

from __future__ import annotations

import asyncio

from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from traitlets import Any, Dict, Enum, Instance, List, TraitError, Unicode, default, validate
from traitlets.utils.importstring import import_item

from jhub_af.accounting import (
    AccountingRefused,
    AccountingUnavailable,
    QuotaDenied,
    SpawnReservation,
    resources_for_selection,
)

from .batch_settings import condor_settings, slurm_settings
from .catalogue import parse_catalogue, visible_profiles
from .form import render_form
from .kube import KubeProfiles, kube_settings
from .local import local_settings
from .options import ProfileRefused, Selection, options_from_form, select
from .profile import CatalogueError, Profile

try:  # JupyterHub 6
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub 5.3: a plain HTTPError with the same message
    from tornado.web import HTTPError

    class SpawnException(HTTPError):
        def __init__(self, message, *, reason="", status_code=400, **kwargs):
            super().__init__(status_code, message, reason=reason or None)
            self.jupyterhub_message = message


STATE_KEY = "af_profile"
LAST_KEY = "af_last_options"

# runtime attributes the hub sets on a spawner, passed on to the backend spawner
RUNTIME_TRAITS = (
    "_deprecated_db_session",
    "admin_access",
    "api_token",
    "authenticator",
    "cert_paths",
    "cookie_host_prefix_enabled",
    "cookie_options",
    "handler",
    "hub",
    "internal_certs_location",
    "internal_ssl",
    "internal_trust_bundles",
    "oauth_client_id",
    "orm_spawner",
    "proxy_spec",
    "public_hub_url",
    "public_url",
    "trusted_alt_names",
    "user",
)
# settings merged into the backend's configured value instead of replacing it
MERGED_SETTINGS = (
    "volumes",
    "volume_mounts",
    "tolerations",
    "node_selector",
    "extra_resource_limits",
    "extra_labels",
)


def _merged_setting(configured, ours: dict):
    """A list setting gets our values appended; a dict setting our keys added."""
    if isinstance(configured, list):
        return [*configured, *ours.values()]
    return {**(configured or {}), **ours}


def apply_settings(spawner: Spawner, settings: dict) -> Spawner:
    """Set a backend spawner's traits from a profile's settings; the settings in
    MERGED_SETTINGS are added to what the spawner's own config holds."""
    for name, value in settings.items():
        if name in MERGED_SETTINGS:
            value = _merged_setting(getattr(spawner, name), value)
        setattr(spawner, name, value)
    return spawner


def _validated_in_start(spawner, user_options) -> None:
    """Nothing to apply here: start() validates user_options against the catalogue."""


def _render_options_form(spawner: ProfileSpawner) -> str:
    return spawner.render_options_form()


class ProfileSpawner(Spawner):
    """Start a server from a profile of the catalogue, on the profile's backend.

    What the hub sees. At each start it validates ``user_options`` against the
    catalogue *filtered by the user's groups now*, reserves the resources with
    af-accounting, builds a fresh backend spawner (local, kubernetes, slurm,
    condor) from config plus the profile's settings, and hands the life cycle to
    it. The backend's state and the reservation id are kept inside the
    ProfileSpawner's state, so after a hub restart the running server is still
    known, polled, renewed and stopped.
    """

    profiles = List(
        Dict(),
        config=True,
        help="""
        The profile catalogue: a list of profiles, each a dict (YAML-friendly, so
        Helm values can carry it). Fields: ``slug``, ``display_name``,
        ``description``, ``backend`` (local, kubernetes, slurm, condor),
        ``image``, ``environment``, ``cvmfs`` (repositories), ``resources``
        (``cores``, ``memory``, optional guarantees), ``accelerator`` (``type``,
        ``count``), ``choices`` (``image_tag``, ``size``, ``partition``,
        ``walltime``), ``groups`` (VO groups that may use it; empty: everyone),
        ``admins_only``, ``start_note``, and per backend ``kubernetes:
        {preemptible}`` and ``slurm: {partition, account, qos, walltime_hours}``.
        A user's default profile is the first one they may use. Checked when the
        hub loads its config; see docs/admin/profiles.md. Example::

            c.ProfileSpawner.profiles = [
                {"slug": "default", "display_name": "Default", "backend": "local"},
                {"slug": "t4", "display_name": "RAPIDS on a T4", "backend": "kubernetes",
                 "image": "nvcr.io/nvidia/rapidsai/notebooks:25.08-cuda12.9-py3.12",
                 "resources": {"cores": 4, "memory": "16G"},
                 "accelerator": {"type": "t4", "count": 1},
                 "groups": ["/cms/gpu"],
                 "start_note": "GPU nodes start in about 10 minutes"},
            ]
        """,
    )

    backend_classes = Dict(
        default_value={
            "local": "jupyterhub.spawner.LocalProcessSpawner",
            "kubernetes": "kubespawner.KubeSpawner",
            "slurm": "jhub_af.spawner.slurm.GuardedSlurmSpawner",
            "condor": "jhub_af.spawner.condor.GuardedCondorSpawner",
        },
        config=True,
        help="""
        The spawner class that runs each backend, as an import string or a class.
        Each backend spawner reads its own config as usual (``c.KubeSpawner...``,
        ``c.GuardedSlurmSpawner.exec_prefix`` ...); the profile's settings are
        applied on top at every start. Default: LocalProcessSpawner, KubeSpawner,
        and jhub_af's guarded batchspawner classes for slurm and condor. The demo
        uses ``SimpleLocalProcessSpawner`` for local (no system users).
        """,
    )

    known_groups = List(
        Unicode(),
        config=True,
        help="""
        The VO groups of this facility (``/atlas``, ``/atlas/users`` ...), for
        ``jhub-af check-config`` only: it prints the profiles each group's members
        see and flags profile groups not in this list. Groups named in the
        authenticator's config (the demo users, ``allowed_vos``) and in
        ``JupyterHub.load_groups`` are added to it. Default: empty.
        """,
    )

    unavailable_backends = Dict(
        Unicode(),
        config=True,
        help="""
        Backends that are configured in the catalogue but cannot start anything
        here, with the explanation shown on their profiles' cards and given when
        one is started. Example (the demo, which has no cluster)::

            c.ProfileSpawner.unavailable_backends = {
                "kubernetes": "This demo has no Kubernetes cluster attached."
            }
        """,
    )

    accounting = Enum(
        ["auto", "on", "off"],
        "auto",
        config=True,
        help="""
        Whether starts go through af-accounting (a reservation before the backend
        starts, released when the server stops). "auto" (the default): on when
        ``c.AccountingClient.url`` is set (``accounting_hub_config`` sets it), off
        otherwise, which the hub logs once. "on": always; with no URL every start is
        then refused as the quota service being unreachable (unless
        ``c.AccountingClient.fail_open``). "off": never, even with a URL.
        """,
    )

    backend_spawner = Any(None, allow_none=True, help="The backend spawner of this start.")
    accounting_reservation = Instance(
        SpawnReservation, help="The server's af-accounting reservation (kept in the state)."
    )
    selection = Any(None, allow_none=True, help="The validated Selection of this start.")

    def __init__(self, **kwargs):
        self._saved: dict = {}
        self._last_options: dict = {}
        self._backend_name = ""
        self._backend_options: dict = {}
        super().__init__(**kwargs)

    @default("accounting_reservation")
    def _default_accounting_reservation(self) -> SpawnReservation:
        return SpawnReservation(parent=self)

    @validate("profiles")
    def _check_profiles(self, proposal):
        try:
            parse_catalogue(proposal.value)
        except CatalogueError as e:
            raise TraitError(f"ProfileSpawner.profiles: {e}") from None
        return proposal.value

    @property
    def catalogue(self) -> tuple[Profile, ...]:
        """The checked profiles of ``profiles`` (checked again at every read)."""
        return parse_catalogue(self.profiles)

    @default("options_form")
    def _default_options_form(self):
        return _render_options_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        # user_options are validated in start(), against the catalogue, at every start
        return _validated_in_start

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    def _user_groups(self) -> list[str]:
        return [g.name for g in self.user.groups]

    def render_options_form(self) -> str:
        """The spawn page's form: the profiles this user may start now, the last choice
        selected. JupyterHub calls it through ``options_form``."""
        profiles = visible_profiles(self.catalogue, self._user_groups(), self.user.admin)
        last = self.orm_spawner.user_options if self.orm_spawner else None
        return render_form(profiles, last or self._last_options, self.unavailable_backends)

    # backend spawners

    def _backend_settings(self, selection: Selection) -> dict:
        backend = selection.backend
        if backend == "local":
            return local_settings(selection)
        if backend == "kubernetes":
            return kube_settings(selection, KubeProfiles(parent=self))
        if backend == "slurm":
            return slurm_settings(selection)
        return condor_settings(selection)

    def _make_backend(self, backend: str, settings: dict, options: dict) -> Spawner:
        # the hub's runtime attributes (user, api_token, ...) are passed on as they are
        cls = self.backend_classes.get(backend)
        if cls is None:
            raise CatalogueError(f"no class for backend {backend!r} in backend_classes")
        if isinstance(cls, str):
            cls = import_item(cls)
        kwargs = {
            name: getattr(self, name)
            for name in RUNTIME_TRAITS
            if name in self.trait_names() and self.trait_has_value(name)
        }
        spawner = cls(config=self.config, user_options=dict(options), **kwargs)
        apply_settings(spawner, settings)
        self._backend_name, self._backend_options = backend, dict(options)
        return spawner

    def _refuse(self, message: str, reason: str, status_code: int = 400) -> SpawnException:
        # a refused start leaves nothing behind, not even the refused options
        self.user_options = dict(self._last_options)
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(self._last_options)
            session = object_session(self.orm_spawner)
            if session is not None:
                session.commit()
        self.log.warning("Start of %s refused: %s", self._log_name, message)
        refusal = SpawnException(message, reason=reason, status_code=status_code)
        # the spawn page shows this text as it is (not "400 SpawnException(...): ...")
        refusal.jupyterhub_message = message
        return refusal

    def validated_selection(self) -> Selection:
        """This start's ``user_options`` checked against the catalogue and the user's
        groups now: a :class:`Selection`, or a SpawnException (HTTP 400) that says
        what is allowed. What a mixin in front of ProfileSpawner (accounting's
        reservation) should read before it calls ``start()``."""
        try:
            return select(self.user_options, self.catalogue, self._user_groups(), self.user.admin)
        except ProfileRefused as e:
            raise self._refuse(str(e), "profile") from None

    async def start(self):
        """Validate, reserve, build the backend and start it; returns its URL.

        Raises the SpawnException of :meth:`_refuse` when the selection is refused
        (400), the profile's backend is unavailable here (400), the quota refuses (403)
        or its service is unreachable (503) or refuses (500); a failed backend start
        releases the reservation and raises what the backend raised. The hub calls it.
        """
        # every start is built from config alone: nothing from an earlier attempt
        self.backend_spawner = self.selection = None
        self._saved = {}
        selection = self.validated_selection()
        profile = selection.profile
        unavailable = self.unavailable_backends.get(profile.backend)
        if unavailable:
            raise self._refuse(
                f"The profile '{profile.display_name}' cannot start here: {unavailable} "
                "Pick another profile.",
                "backend-unavailable",
            )
        await self._reserve(selection)
        try:
            options = selection.user_options()
            self.user_options = options
            if self.orm_spawner is not None:
                self.orm_spawner.user_options = options
            self._last_options = options
            self.selection = selection
            self.backend_spawner = self._make_backend(
                profile.backend, self._backend_settings(selection), options
            )
            self.log.info(
                "Starting %s with profile %s on %s", self._log_name, profile.slug, profile.backend
            )
            url = await self.backend_spawner.start()
        except BaseException:
            await self.accounting_reservation.release("start failed")
            raise
        if self.accounting_reservation.reservation_id:
            await self.accounting_reservation.confirm()
        return url

    # accounting

    def _accounting_on(self) -> bool:
        # "auto" with no URL: off, and the hub says so once
        if self.accounting == "auto":
            if self.accounting_reservation.configured:
                return True
            self.accounting_reservation.say_accounting_off()
            return False
        return self.accounting == "on"

    async def _reserve(self, selection: Selection) -> None:
        """Ask af-accounting for this start's reservation, sized from the validated
        selection, unless accounting is off; a refusal becomes the SpawnException the
        hub shows the user (quota 403, quota-service-unavailable 503,
        quota-service-refused 500)."""
        self.accounting_reservation.clear()
        if not self._accounting_on():
            return
        try:
            await self.accounting_reservation.reserve(resources_for_selection(selection))
        except QuotaDenied as e:
            raise self._refuse(e.message, "quota", status_code=403) from None
        except AccountingUnavailable as e:
            raise self._refuse(e.message, "quota-service-unavailable", status_code=503) from None
        except AccountingRefused as e:
            message = (
                f"The facility's quota service refused this start: {e.message} "
                "Tell the facility's admins."
            )
            raise self._refuse(message, "quota-service-refused", status_code=500) from None

    async def poll(self):
        """The backend's poll: None while the server runs (then the reservation is
        renewed, at most every heartbeat interval), an exit status once it is gone
        (then the reservation is released: the hub does not call stop() then). The hub
        calls it."""
        status = 0 if self.backend_spawner is None else await self.backend_spawner.poll()
        if status is None:
            await self.accounting_reservation.heartbeat()
        else:
            # gone (or never started): release now; the hub does not call stop() then
            await self.accounting_reservation.release("gone")
        return status

    async def stop(self, now=False):
        """Stop the backend, then release the reservation (once). The hub calls it."""
        try:
            if self.backend_spawner is not None:
                await self.backend_spawner.stop(now=now)
        finally:
            # the id is this spawner's own, untouched by the backend's clear_state();
            # a release already sent by poll() left nothing to send here
            await self.accounting_reservation.release("stopped")

    async def progress(self):
        """Progress events for the spawn-pending page: waiting for a GPU node and pulling
        the image (kubernetes), then the backend's own. The hub calls it."""
        while self.backend_spawner is None:
            if not self._spawn_pending:
                return
            await asyncio.sleep(0.1)
        selection = self.selection
        profile = selection.profile if selection else None
        if profile is not None and profile.backend == "kubernetes":
            if profile.gpu_type:
                note = f" ({profile.start_note})" if profile.start_note else ""
                yield {"message": f"Waiting for a {profile.gpu_type.upper()} GPU node{note}"}
            yield {"message": f"Pulling image {selection.image} if the node does not have it yet"}
        async for event in self.backend_spawner.progress():
            yield event

    # state: the backend's own, plus what it takes to rebuild the backend

    def get_state(self):
        """The hub's state of this server: the backend's own state, its backend and
        options (to rebuild it after a restart), the last options and the reservation id."""
        state = super().get_state()
        if self.backend_spawner is not None:
            state[STATE_KEY] = {
                "backend": self._backend_name,
                "options": self._backend_options,
                "backend_state": self.backend_spawner.get_state(),
            }
        elif self._saved:
            state[STATE_KEY] = self._saved
        if self._last_options:
            state[LAST_KEY] = self._last_options
        return self.accounting_reservation.save(state)

    def load_state(self, state):
        """Take back what :meth:`get_state` saved and rebuild the backend of a running
        server; a backend that cannot be rebuilt is logged, not raised. The hub calls it."""
        super().load_state(state)
        self._last_options = dict(state.get(LAST_KEY) or {})
        self.accounting_reservation.load(state)
        saved = state.get(STATE_KEY)
        if not saved:
            return
        self._saved = saved
        try:
            self._restore(saved)
        except Exception:
            self.log.exception("Could not rebuild the backend of %s", self._log_name)

    def _restore(self, saved: dict) -> None:
        """Rebuild the backend of a running server (after a hub restart).

        Settings come from today's catalogue when the profile is still in it;
        the backend's saved state (pid, job id, pod name) is what poll and stop need.
        """
        backend, options = saved["backend"], saved.get("options") or {}
        profile = next((p for p in self.catalogue if p.slug == options.get("profile")), None)
        settings: dict = {}
        if profile is not None and profile.backend == backend:
            try:
                # group access is not re-checked: the server is already running
                self.selection = select(options, [profile], [], admin=True)
                settings = self._backend_settings(self.selection)
            except (ProfileRefused, CatalogueError):
                self.selection = None
        self.backend_spawner = self._make_backend(backend, settings, options)
        self.backend_spawner.load_state(saved.get("backend_state") or {})

    def clear_state(self):
        """Forget the backend, its state and the reservation id (the hub calls it once
        the server stopped)."""
        super().clear_state()
        if self.backend_spawner is not None:
            self.backend_spawner.clear_state()
        self.backend_spawner = self.selection = None
        self._saved = {}
        self.accounting_reservation.clear()
