"""The dashboard's pages: sign in with a key, then overview, experiments, after-sales,
merchants and decisions. Server-rendered (Jinja2); every asset is served from the package.

A page is gathered by :mod:`tianping.dashboard.views` (or a service function) and rendered
here; forms post back with the session's CSRF token and are answered with a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from tianping.api.deps import IdPath
from tianping.auth import service as keys
from tianping.auth import sessions as session
from tianping.auth.keys import ADMIN, ANALYST, MERCHANT, OPERATOR, STAFF, Principal
from tianping.dashboard import forms, queries, views
from tianping.errors import Forbidden, InvalidInput, NotFound, TianpingError
from tianping.report import figures

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PAGE = 25
REVIEWERS = (ADMIN, OPERATOR)
#: Roles that may vote on decisions (as the API's approve/reject routes allow).
VOTERS = (ADMIN, OPERATOR)
#: Roles that may read and propose decisions (as the API's propose route allows).
PROPOSERS = (ADMIN, OPERATOR, ANALYST)
#: Decision ids are 32-bit integer columns.
DecisionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CHOICES = ("approve", "reject", "veto")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_env = Environment(loader=PackageLoader("tianping.dashboard", "templates"),
                   autoescape=select_autoescape(("html", "j2")))  # fmt: skip
_env.filters["fmt"] = views.fmt
_env.filters["pretty"] = views.pretty_json
_env.filters["label"] = figures.label
_env.filters["number"] = figures.number
_env.filters["queue_reason"] = views.queue_reason
_env.filters["evidence_links"] = views.evidence_links
_env.filters["cell"] = figures.cell
_env.filters["money"] = lambda minor, currency="CNY": figures.money(minor, currency, minor=True)
_env.filters["is_money"] = lambda key: key in figures.MONEY_KEYS or str(key).endswith("_minor")
_STATIC = {"style.css": "text/css"}


class _SignIn(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def _viewer(request: Request) -> tuple[Principal, str]:
    store = request.app.state.store
    cookie, secret = request.cookies.get(session.COOKIE), request.app.state.secret
    found = store.read(lambda s: session.verify(cookie, secret=secret, session=s, now=_now()))
    if found is None:
        raise _SignIn
    return found


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    text = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _page(request: Request, template: str, roles: tuple[str, ...], build: Callable) -> Response:
    """Check the session and role, gather the page with ``build(who)``, render it."""
    try:
        who, csrf = _viewer(request)
        if who.role not in roles:
            raise Forbidden(f"a {who.role} key cannot open this page", code="wrong_role")
        return _render(request, template, who=who, csrf=csrf, **build(who))
    except _SignIn:
        return RedirectResponse(f"/dashboard/sign-in?next={quote(request.url.path)}", 303)
    except TianpingError as exc:
        who = locals().get("who")
        return _render(request, "message.html.j2", exc.http_status, who=who, csrf=None,
                       title="Not available", message=exc.message)  # fmt: skip


def _same_origin(request: Request) -> None:
    """Refuse a form posted from another site (browsers send ``Origin`` on every POST)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("the form was posted from another site", code="csrf")


def _check_form(request: Request, csrf: str) -> Principal:
    _same_origin(request)
    who, expected = _viewer(request)
    if not csrf or csrf != expected:
        raise Forbidden("the form is stale or forged; reload the page", code="csrf")
    return who


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own stylesheet (no file outside the package is served)."""
    if name not in _STATIC:
        raise NotFound(f"no file {name!r}")
    data = resources.files("tianping.dashboard").joinpath("static", name).read_bytes()
    return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "max-age=3600"})


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/dashboard/") -> Response:
    """The sign-in form; ``next`` is where to go after (a dashboard path only)."""
    return _render(
        request, "sign_in.html.j2", who=None, csrf=None, next=_safe_next(next), error=None
    )


@router.post("/sign-in")
def sign_in(
    request: Request, key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "/dashboard/",
) -> Response:  # fmt: skip
    """Sign in with an API key: a server-side session, its cookie, then a redirect to ``next``."""
    store, secret = request.app.state.store, request.app.state.secret

    def start(s):
        who = keys.authenticate(key.strip(), session=s)
        return who, session.issue(who, secret=secret, session=s, now=_now())

    try:
        _same_origin(request)  # a sign-in forged from elsewhere would log the victim in as us
        who, cookie = store.transact(start)
    except TianpingError as exc:
        return _render(request, "sign_in.html.j2", exc.http_status, who=None, csrf=None,
                       next=_safe_next(next), error=exc.message)  # fmt: skip
    target = _safe_next(next)
    if who.role == MERCHANT and not target.startswith(f"/dashboard/merchants/{who.merchant_id}"):
        target = f"/dashboard/merchants/{quote(who.merchant_id or '')}"
    response = RedirectResponse(target, 303)
    response.set_cookie(session.COOKIE, cookie, max_age=session.LIFETIME_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/dashboard")  # fmt: skip
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    """End the session on the server and clear the cookie (a forged sign-out can only end a
    session, so it needs no token; the cookie is SameSite=Strict anyway)."""
    store, secret = request.app.state.store, request.app.state.secret
    cookie = request.cookies.get(session.COOKIE)
    try:
        who, _ = _viewer(request)
        store.acting_as(who.name, who.key_id).transact(
            lambda s: session.end(cookie, secret=secret, session=s, now=_now()))  # fmt: skip
    except _SignIn:
        pass  # nothing live to end
    response = RedirectResponse("/dashboard/sign-in", 303)
    response.delete_cookie(session.COOKIE, path="/dashboard")
    return response


def _safe_next(target: str) -> str:
    """A local dashboard path to go to after signing in; anything else goes to the overview."""
    plain = all("!" <= c <= "~" for c in target) and "//" not in target[1:] and "\\" not in target
    return target if plain and target.startswith("/dashboard/") else "/dashboard/"


@router.get("/")
def overview(request: Request) -> Response:
    """The overview: headline metrics against the month before, the market, goals."""
    state = request.app.state
    try:
        who, _ = _viewer(request)
        if who.role == MERCHANT:
            return RedirectResponse(f"/dashboard/merchants/{quote(who.merchant_id or '')}", 303)
    except _SignIn:
        pass
    return _page(request, "overview.html.j2", STAFF, lambda who: views.overview(
        state.settings, state.store.sessions, state.dashboard_cache))  # fmt: skip


@router.get("/experiments")
def experiments(request: Request) -> Response:
    """Every stored experiment with its status and dates."""
    from tianping.experiments import service

    def build(who):
        return {"experiments": request.app.state.store.read(lambda s: [
            service.spec_of(e) for e in service.list_all(session=s)])}  # fmt: skip

    return _page(request, "experiments.html.j2", STAFF, build)


@router.get("/experiments/{name}")
def experiment(request: Request, name: IdPath) -> Response:
    """One experiment's analysis report, as ``tianping experiment analyze`` computes it."""
    state = request.app.state

    def build(who):
        from tianping.governance.verdicts import pending_ship

        body = views.experiment_report(name, state.settings, state.store.sessions,
                                       state.dashboard_cache)  # fmt: skip
        pending = state.store.read(
            lambda s: (d := pending_ship(name, session=s)) and (d.id, d.payload.get("variant"))
        )
        return {"name": name, "report_html": body, "pending_ship": pending}

    return _page(request, "experiment.html.j2", STAFF, build)


@router.get("/races")
def races(request: Request) -> Response:
    """Every horse race with its phase and leader."""
    from tianping.races import service

    def build(who):
        return {"races": request.app.state.store.read(lambda s: [
            {"name": r.name, "status": r.phase, "spec": service.spec_of(r)}
            for r in service.list_all(session=s)])}  # fmt: skip

    return _page(request, "races.html.j2", STAFF, build)


@router.get("/races/{name}")
def race(request: Request, name: IdPath) -> Response:
    """One race's report: standings, weights over its steps, the confirmation."""
    state = request.app.state

    def build(who):
        body = views.race_report(name, state.settings, state.store.sessions,
                                 state.dashboard_cache)  # fmt: skip
        return {"name": name, "report_html": body}

    return _page(request, "race.html.j2", STAFF, build)


@router.get("/after-sales")
def after_sales(
    request: Request, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    merchants_offset: Annotated[int, Query(ge=0, le=10**9)] = 0, done: str | None = None,
) -> Response:  # fmt: skip
    """After-sales: the review queue, the merchant protection fund, refunds by reason and category, policy versions, the latest replay, merchant quality."""
    from tianping.refunds import fund as protection_fund
    from tianping.refunds import scores as refund_scores
    from tianping.refunds import service

    store = request.app.state.store

    def read(s):
        queue, total = service.review_queue(session=s, limit=PAGE, offset=offset)
        ids, n_merchants = queries.merchants(s, limit=PAGE, offset=merchants_offset)
        quality = [refund_scores.merchant_quality(m, session=s, env=store.env) for m in ids]
        return {"queue": [service.view(r, session=s) for r in queue], "queue_total": total,
                "offset": offset, "merchants_offset": merchants_offset, "page": PAGE,
                "quality": quality, "merchants_total": n_merchants,
                "reasons": queries.refund_rates_by_reason(s), "done": done,
                "policies": queries.policy_history(s),
                "categories": queries.rates_by_category(s), "replay": queries.latest_replay(s),
                "fund": protection_fund.view(session=s, limit=10),
                "can_review": False}  # fmt: skip

    def build(who):
        return {**store.read(read), "can_review": who.role in REVIEWERS}

    return _page(request, "after_sales.html.j2", STAFF, build)


@router.post("/after-sales/{refund_id}/decide")
def decide(
    request: Request, refund_id: IdPath, action: Annotated[str, Form(max_length=40)],
    csrf: Annotated[str, Form(max_length=100)] = "", note: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    """A reviewer's decision on a queued request or appeal, from the after-sales form (CSRF-checked)."""
    from tianping.refunds import service
    from tianping.refunds.schemas import ReviewIn

    store = request.app.state.store
    try:
        who = _check_form(request, csrf)
        if who.role not in REVIEWERS:
            raise Forbidden(f"a {who.role} key cannot decide refunds", code="wrong_role")
        body = ReviewIn.model_validate({"action": action, "note": note})
        store.acting_as(who.name, who.key_id).transact(lambda s: service.review(
            refund_id, body, reviewer=who.name, session=s, env=store.env))  # fmt: skip
    except _SignIn:
        return RedirectResponse("/dashboard/sign-in", 303)
    except TianpingError as exc:
        return _render(request, "message.html.j2", exc.http_status, who=None, csrf=None,
                       title="Not decided", message=exc.message)  # fmt: skip
    except ValueError as exc:  # pydantic: an action the form does not offer
        return _render(request, "message.html.j2", 422, who=None, csrf=None,
                       title="Not decided", message=str(exc).splitlines()[0])  # fmt: skip
    return RedirectResponse(f"/dashboard/after-sales?done={quote(refund_id)}", 303)


@router.get("/merchants/{merchant_id}")
def merchant(
    request: Request, merchant_id: IdPath, offset: Annotated[int, Query(ge=0, le=10**9)] = 0
) -> Response:
    """One merchant's quality score and refund requests (a merchant key sees only its own)."""
    from tianping.refunds import scores as refund_scores

    store = request.app.state.store

    def build(who):
        if not who.owns(merchant_id):
            raise NotFound(f"no merchant {merchant_id!r}")

        def read(s):
            quality = refund_scores.merchant_quality(merchant_id, session=s, env=store.env)
            rows, total = queries.merchant_refunds(s, merchant_id, limit=PAGE, offset=offset)
            return {"merchant_id": merchant_id, "quality": quality, "refunds": rows,
                    "total": total, "offset": offset, "page": PAGE}  # fmt: skip

        return store.read(read)

    return _page(request, "merchant.html.j2", (*STAFF, MERCHANT), build)


def _decisions_page(request: Request, offset: int = 0, **extra: Any) -> Callable:
    from tianping.governance import service

    def build(who):
        now = _now()
        rows = request.app.state.store.read(lambda s: [service.summary(d, now=now) for d in
            service.list_decisions(session=s, limit=PAGE + 1, offset=offset)])  # fmt: skip
        return {"decisions": rows[:PAGE], "more": len(rows) > PAGE, "offset": offset, "page": PAGE,
                "kinds": forms.KINDS, "can_propose": who.role in PROPOSERS, "form": {},
                "error": None, "proposed": None, **extra}  # fmt: skip

    return build


@router.get("/decisions")
def decisions(
    request: Request, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    proposed: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:  # fmt: skip
    """Decisions, newest first, filtered by status, with the form to propose one."""
    page = _decisions_page(request, offset, proposed=proposed)
    return _page(request, "decisions.html.j2", PROPOSERS, page)


@router.post("/decisions")
async def propose(request: Request) -> Response:
    """Propose a decision through the governance service as the signed-in key's holder; a
    refusal (a missing field, no approvers named, an unknown experiment) is shown on the page
    above the form, with what was typed kept."""
    from starlette.concurrency import run_in_threadpool

    form = {k: str(v)[:2000] for k, v in (await request.form()).items()}
    return await run_in_threadpool(_propose, request, form)


def _propose(request: Request, form: dict[str, str]) -> Response:
    from tianping.governance import service

    store = request.app.state.store
    try:
        who = _check_form(request, form.get("csrf", ""))
        if who.role not in PROPOSERS:
            raise Forbidden(f"a {who.role} key cannot propose decisions", code="wrong_role")
        p = forms.proposal_of(form)
        number = store.acting_as(who.name, who.key_id).transact(lambda s: service.propose(
            p, session=s, actor=who.name, key_id=who.key_id).id)  # fmt: skip
    except _SignIn:
        return RedirectResponse("/dashboard/sign-in", 303)
    except TianpingError as exc:
        kept = {k: form.get(k, "") for k in forms.ALL_FIELDS}
        response = _page(request, "decisions.html.j2", PROPOSERS,
                         _decisions_page(request, error=exc.message, form=kept))  # fmt: skip
        if response.status_code == 200:
            response.status_code = exc.http_status
        return response
    return RedirectResponse(f"/dashboard/decisions?proposed={number}", 303)


def _decision_page(request: Request, decision_id: int, **extra: Any) -> Callable:
    from tianping.governance import rules, service
    from tianping.governance.evidence_view import summarise

    def build(who):
        def read(s):
            row = service.get_or_raise(decision_id, session=s)
            d = service.view(row, session=s, now=_now())
            for item, frozen in zip(d["evidence"], row.evidence, strict=True):
                item["summary"] = summarise(frozen.kind, frozen.content)
            refusal = rules.vote_refusal(service.quorum_of(row), proposer=row.proposer,
                                         status=d["status"], ballots=service.ballots_of(row),
                                         voter=who.name)  # fmt: skip
            return d, refusal

        d, refusal = request.app.state.store.read(read)
        if who.role not in VOTERS:
            refusal = f"{who.role} keys do not vote on decisions"
        return {"d": d, "can_vote": refusal is None, "no_vote": refusal, "voted": None,
                "error": None, **extra}  # fmt: skip

    return build


@router.get("/decisions/{decision_id}")
def decision(request: Request, decision_id: DecisionId, voted: str | None = None) -> Response:
    """One decision: what is decided, votes, the frozen evidence and its audit history."""
    page = _decision_page(request, decision_id, voted=voted if voted in CHOICES else None)
    return _page(request, "decision.html.j2", (ADMIN, OPERATOR, ANALYST), page)


@router.post("/decisions/{decision_id}/vote")
def vote(
    request: Request, decision_id: DecisionId, choice: Annotated[str, Form(max_length=10)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:  # fmt: skip
    """Approve, reject or veto through the governance service, as the signed-in key's holder;
    the service's refusal (self-approval, not an approver, decided, expired) is shown on the page."""
    try:
        who = _check_form(request, csrf)
        if who.role not in VOTERS:
            raise Forbidden(f"a {who.role} key cannot vote on decisions", code="wrong_role")
        recorded, message = request.app.state.store.acting_as(who.name, who.key_id).transact(
            lambda s: _cast(s, decision_id, choice, who, comment)
        )
    except _SignIn:
        return RedirectResponse("/dashboard/sign-in", 303)
    except TianpingError as exc:
        return _vote_refused(request, decision_id, exc.http_status, exc.message)
    if not recorded:  # the decision expired instead; that is committed, the vote is not
        return _vote_refused(request, decision_id, 409, message)
    return RedirectResponse(f"/dashboard/decisions/{decision_id}?voted={choice}", 303)


def _cast(s, decision_id: int, choice: str, who: Principal, comment: str) -> tuple[bool, str]:
    from tianping.governance import service

    if choice not in CHOICES:
        raise InvalidInput(f"unknown vote {choice!r}; use {', '.join(CHOICES)}", field="choice")
    r = service.vote(decision_id, choice, session=s, actor=who.name, key_id=who.key_id,
                     comment=comment)  # fmt: skip
    return r.recorded, r.message


def _vote_refused(request: Request, decision_id: int, status: int, message: str) -> Response:
    response = _page(request, "decision.html.j2", (ADMIN, OPERATOR, ANALYST),
                     _decision_page(request, decision_id, error=message))  # fmt: skip
    if response.status_code == 200:
        response.status_code = status
    return response


def install(app: FastAPI, settings) -> None:
    """Mount the dashboard on ``app``; its warehouse figures are cached per process, its
    sessions signed with the server's secret (:mod:`tianping.auth.secret`)."""
    from tianping.auth.secret import server_secret

    app.state.settings = settings
    app.state.secret = server_secret(settings.home)
    app.state.dashboard_cache = views.Cache()
    app.include_router(router)
