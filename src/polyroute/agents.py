"""Seed 001's agents: each has a role, and every call goes through that role's pool.

``BaseAgent(role=ModelRole.WRITER, product_type="landing", router=router)``
calls the route ``role:writer`` with the product type, so the router picks
``roles.writer.by_product.landing`` (else ``roles.writer.models``), retries,
falls back along the pool and cools failing models down; the agent sees one
answer.  When every model fails, the original provider exception is
re-raised (seed 001: "original exception re-raised if all models fail"): the
last model's error, e.g. a ``ServerError``, with every attempt attached as
``err.attempts`` (and as ``err.__notes__`` lines) and the router's
``RouteExhaustedError`` as ``err.exhausted``.  A call that never reached a
provider (every model cooling down) raises the ``RouteExhaustedError`` itself.

``fallback_rules`` (a ``FallbackRules``, e.g. ``SEED_001_FALLBACK_RULES``) makes
an answer that lacks a field the role needs for its product type a hard fail,
so the pool falls back to its next model (seed 001's ``MISSING_FIELD``).

``StyleRefinerAgent(mode="full_mimic")`` sends reference images with its
prompt and so needs a vision model; when its pool has none it drops the
images, says so in a warning and works from text (``mode == "text_only"``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict, Unpack

from polyroute.errors import RouteExhaustedError
from polyroute.facades import FallbackRules, ModelRole
from polyroute.patterns.classify import CLASSIFY_PROMPT
from polyroute.patterns.result import Prompt, as_messages
from polyroute.patterns.text import fill, parse_label, parse_verdict
from polyroute.routing.validators import PASS, Validation, Verdict
from polyroute.types import Envelope, Message

if TYPE_CHECKING:
    from polyroute.config.catalog import ModelInfo
    from polyroute.facades import ModelPoolManager
    from polyroute.router import Router
    from polyroute.routing.validators import Validate

log = logging.getLogger("polyroute.agents")
StyleMode = Literal["full_mimic", "text_only"]


class AgentOptions(TypedDict, total=False):
    """The keyword options every agent takes (see ``BaseAgent``)."""

    system: str | None
    validate: Validate
    model_pool: ModelPoolManager | None
    params: Mapping[str, Any] | None
    fallback_rules: FallbackRules | None


CHECK_PROMPT = (
    "Check the content below{against}.\n\n{content}\n\n"
    "Reply PASS if it is ready to publish; otherwise reply FAIL: followed by what is wrong."
)


class BaseAgent:
    """An agent bound to a role (and optionally a product type) instead of a model."""

    default_role: ClassVar[ModelRole | None] = None

    def __init__(
        self,
        role: ModelRole | str | None = None,
        product_type: str | None = None,
        router: Router | None = None,
        *,
        system: str | None = None,
        validate: Validate = None,
        model_pool: ModelPoolManager | None = None,
        params: Mapping[str, Any] | None = None,
        fallback_rules: FallbackRules | None = None,
    ) -> None:
        chosen = role if role is not None else self.default_role
        if chosen is None:
            raise TypeError(f"{type(self).__name__} needs a role (one of {_roles()})")
        try:
            self.role = ModelRole(chosen)
        except ValueError:
            raise ValueError(f"unknown role {chosen!r}; roles: {_roles()}") from None
        self.product_type = product_type
        self.system = system
        self.validate = validate
        self.params = dict(params or {})  # per-agent call parameters (OpenAI names)
        self.fallback_rules = fallback_rules  # required fields per product type (opt-in)
        # Seed 001 handed agents a ModelPoolManager; its router is the one to call.
        self._router = router if router is not None else (model_pool.router if model_pool else None)
        self.last: Envelope | None = None  # the latest answer's envelope
        self.calls: list[Envelope] = []  # every answer this agent got
        self.warnings: list[str] = []  # the agent's own notes (e.g. a degraded mode)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(role={self.role.value!r}, product_type={self.product_type!r})"
        )

    @property
    def router(self) -> Router:
        if self._router is None:  # like FunctionPipeline: no router given, the usual config search
            from polyroute.router import Router

            self._router = Router.from_env()
        return self._router

    @property
    def route(self) -> str:
        return f"role:{self.role.value}"

    def candidates(self) -> list[ModelInfo]:
        """The models of this role's pool for this product type, in order."""
        return [c.info for c in self.router.resolve(self.route, self.product_type).candidates]

    def pool(self) -> list[str]:
        return [m.id for m in self.candidates()]

    @property
    def total_cost(self) -> float:
        return sum(e.cost for e in self.calls)

    async def complete(
        self,
        prompt: Prompt,
        *,
        system: str | None = None,
        validate: Validate = None,
        **params: Any,
    ) -> Envelope:
        """One call through the role's pool; the whole envelope.  When every model
        fails, the original provider exception (see the module docstring)."""
        try:
            env = await self.router.complete(
                self.route,
                as_messages(prompt, system if system is not None else self.system),
                product_type=self.product_type,
                validate=self._validator(validate if validate is not None else self.validate),
                labels={"agent": type(self).__name__},
                **{**self.params, **params},
            )
        except RouteExhaustedError as exc:
            original = original_error(exc)
            if original is None:
                raise
            exhausted = exc
        else:
            return self._served(env)
        log.warning(
            "agent call failed on every model",
            extra={
                "role": self.role.value,
                "product_type": self.product_type,
                "route": exhausted.route,
                "attempts": [a.model for a in exhausted.attempts],
                "error_kind": type(original).__name__,
            },
        )
        raise attach_attempts(original, exhausted)

    def _validator(self, validate: Validate) -> Validate:
        """The caller's validator, after the fallback rules' field check (if any)."""
        rules = self.fallback_rules
        check = rules.validator(self.role, self.product_type) if rules is not None else None
        if check is None:
            return validate
        if validate is None:
            return check
        if not callable(validate):
            raise TypeError("fallback_rules combine with a callable validate= only")
        theirs = validate

        def both(content: str | None) -> Validation | Verdict | bool:
            first = check(content)
            return first if first.hard_fail else theirs(content)

        return both

    def _served(self, env: Envelope) -> Envelope:
        self.last = env
        self.calls.append(env)
        log.info(
            "agent call served",
            extra={
                "role": self.role.value,
                "product_type": self.product_type,
                "model": env.model,
                "fallbacks": env.fallbacks,
            },
        )
        return env

    async def call_llm(self, prompt: Prompt, **params: Any) -> str:
        """Seed 001's call: the answer's text (``self.last`` keeps the envelope)."""
        env = await self.complete(prompt, **params)
        return env.content or ""

    def call_llm_sync(self, prompt: Prompt, **params: Any) -> str:
        """``call_llm`` for synchronous code (not from inside a running event loop).
        Runs on the router's own loop thread, where its HTTP session lives."""
        return self.router._run_sync(self.call_llm(prompt, **params))


class _RoleAgent(BaseAgent):
    """An agent whose role is fixed by its class."""

    default_role: ClassVar[ModelRole | None]

    def __init__(
        self,
        product_type: str | None = None,
        router: Router | None = None,
        **options: Unpack[AgentOptions],
    ) -> None:
        super().__init__(self.default_role, product_type, router, **options)


class ClassifierAgent(_RoleAgent):
    default_role = ModelRole.CLASSIFIER

    async def classify(
        self, text: str, labels: Sequence[str], *, default: str | None = None
    ) -> str | None:
        """The first of ``labels`` the model names, else ``default``."""
        answer = await self.call_llm(
            fill(CLASSIFY_PROMPT, {"text": text, "labels": ", ".join(labels)})
        )
        return parse_label(answer, labels) or default


class WriterAgent(_RoleAgent):
    default_role = ModelRole.WRITER


class ExpanderAgent(_RoleAgent):
    default_role = ModelRole.EXPANDER


class ValidatorAgent(_RoleAgent):
    default_role = ModelRole.VALIDATOR

    async def check(self, content: str, requirements: str = "") -> Validation:
        """PASS, or a hard fail carrying the model's reasons (seed 001's
        ``validator_result.hard_fail``).  An answer naming neither PASS nor
        FAIL is a hard fail: an unreadable verdict must not let content through."""
        against = f" against these requirements: {requirements}" if requirements else ""
        answer = await self.call_llm(fill(CHECK_PROMPT, {"against": against, "content": content}))
        passed, feedback = parse_verdict(answer)
        if passed:
            return PASS
        why = feedback if passed is False else f"no PASS/FAIL verdict in: {feedback[:200]}"
        return Validation(Verdict.HARD_FAIL, message=why)


class StyleRefinerAgent(_RoleAgent):
    default_role = ModelRole.STYLE_REFINER

    def __init__(
        self,
        product_type: str | None = None,
        router: Router | None = None,
        *,
        mode: StyleMode = "text_only",
        images: Sequence[str] = (),
        **options: Unpack[AgentOptions],
    ) -> None:
        super().__init__(product_type, router, **options)
        if mode not in ("full_mimic", "text_only"):
            raise ValueError(f"mode must be 'full_mimic' or 'text_only', not {mode!r}")
        self.requested_mode: StyleMode = mode
        self.mode: StyleMode = mode  # what the latest call actually did
        self.images = list(images)  # reference images: URLs or data: URLs

    def vision_models(self) -> list[str]:
        return [m.id for m in self.candidates() if m.has("vision")]

    async def complete(
        self,
        prompt: Prompt,
        *,
        system: str | None = None,
        validate: Validate = None,
        images: Sequence[str] | None = None,
        **params: Any,
    ) -> Envelope:
        refs = list(self.images if images is None else images)
        note = None
        if self.requested_mode == "full_mimic" and refs:
            # Checked on every call, not once: the pool follows the config, which may reload.
            if self.vision_models():
                self.mode = "full_mimic"
                prompt = _with_images(prompt, refs)
            else:
                self.mode = "text_only"
                note = (
                    f"{self.route}: full_mimic needs a vision model and none of "
                    f"{', '.join(self.pool())} has one; dropped {len(refs)} reference "
                    f"image(s) and refined from text only"
                )
                log.warning(note)
                self.warnings.append(note)
        env = await super().complete(prompt, system=system, validate=validate, **params)
        if note:
            env.warnings.append(note)
        return env

    async def refine(
        self, content: str, *, style: str = "", images: Sequence[str] | None = None
    ) -> str:
        """Restyle ``content``; in full_mimic mode, after the reference images."""
        how = f" in this style: {style}" if style else ""
        if self.requested_mode == "full_mimic":
            how += " and match the look of the attached reference image(s)"
        prompt = f"Refine the content below{how}. Keep its meaning.\n\n{content}"
        env = await self.complete(prompt, images=images)
        return env.content or ""


def _roles() -> str:
    return ", ".join(r.value for r in ModelRole)


def _with_images(prompt: Prompt, images: Sequence[str]) -> list[Message]:
    """The prompt with OpenAI ``image_url`` parts added to its last user message."""
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    if isinstance(prompt, str):
        return [{"role": "user", "content": [{"type": "text", "text": prompt}, *parts]}]
    msgs = copy.deepcopy(list(prompt))  # the caller's messages stay as they were
    for m in reversed(msgs):
        if m.get("role") == "user":
            content = m.get("content")
            text = [{"type": "text", "text": content}] if isinstance(content, str) else []
            m["content"] = [*(content if isinstance(content, list) else text), *parts]
            return msgs
    return [*msgs, {"role": "user", "content": parts}]


def original_error(exc: RouteExhaustedError) -> BaseException | None:
    """The provider exception behind a failed route: the one the router chained
    (the last model's), else the last it recorded; None when no model was reached."""
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, RouteExhaustedError):
        return cause
    errors = [e for e in exc.errors if not isinstance(e, RouteExhaustedError)]
    return errors[-1] if errors else None


def attach_attempts(error: BaseException, exhausted: RouteExhaustedError) -> BaseException:
    """``error`` with the route's attempts on it: ``error.attempts`` (every model
    tried, in order), ``error.exhausted`` (the route's error) and one
    ``__notes__`` line per attempt, so a traceback shows the whole fallback."""
    error.attempts = list(exhausted.attempts)  # type: ignore[attr-defined]
    error.exhausted = exhausted  # type: ignore[attr-defined]
    notes = getattr(error, "__notes__", None) or []
    head = f"every model of route {exhausted.route!r} failed; attempts:"
    if head not in notes:
        error.add_note(head)
        for a in exhausted.attempts:
            error.add_note(f"  {a.describe()}")
    return error
