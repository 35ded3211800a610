"""The page at ``/``: what is running, which routes resolve where, which providers
have keys, and how to call it.  Plain server-rendered HTML, no JavaScript, no
network.  With gateway keys configured it shows only that the gateway is up."""

from __future__ import annotations

from html import escape

from polyroute._version import __version__
from polyroute.config.validate import route_names
from polyroute.server.gateway import Gateway

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;
padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}code,pre{background:#f4f4f4;
padding:.1rem .3rem;border-radius:3px}pre{padding:.8rem;overflow-x:auto}.ok{color:#17702b}
.missing{color:#b00020}.muted{color:#666}
"""


def _page(body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>polyroute gateway</title><style>{STYLE}</style></head><body>"
        f"<h1>polyroute gateway <small class=muted>{escape(__version__)}</small></h1>"
        f"{body}</body></html>"
    )


def render_status(gw: Gateway) -> str:
    if gw.auth_enabled:
        return _page(
            "<p>Running. This gateway requires an API key; call it with "
            "<code>Authorization: Bearer &lt;key&gt;</code>.</p>"
        )
    router = gw.router
    rows = []
    for name in route_names(router.config):
        r = router.resolver.resolve(name)
        pool = ", ".join(escape(c.info.id) for c in r.candidates)
        rows.append(
            f"<tr><td><code>{escape(name)}</code></td><td>{escape(r.strategy)}</td>"
            f"<td>{pool}</td></tr>"
        )
    prov = []
    used = {
        c.info.provider
        for n in route_names(router.config)
        for c in router.resolver.resolve(n).candidates
    }
    for name in sorted(used):
        st = router.registry.status(name)
        if st.usable:
            state = "<span class=ok>ready</span>"
        else:
            page = (
                f" — get one at <a href='{escape(st.key_page)}'>{escape(st.key_page)}</a>"
                if st.key_page
                else ""
            )
            state = f"<span class=missing>set {escape(st.env_var or '')}</span>{page}"
        prov.append(f"<tr><td>{escape(name)}</td><td>{state}</td></tr>")
    sim = "simulator" in used
    note = (
        (
            "<p class=muted>No provider key is set, so the built-in routes run on the "
            "<b>simulator</b> (priced like the real models, labelled simulated). Set e.g. "
            "<code>OPENAI_API_KEY</code> and restart to use real models.</p>"
        )
        if sim
        else ""
    )
    example = (
        "from openai import OpenAI\n"
        'client = OpenAI(base_url="http://HOST:PORT/v1", api_key="unused")\n'
        'r = client.chat.completions.create(model="tier:fast",\n'
        '    messages=[{"role": "user", "content": "Hello"}])\n'
        "print(r.choices[0].message.content)"
    )
    return _page(
        f"{note}<h2>Call it</h2><pre>{escape(example)}</pre>"
        "<p>Endpoints: <code>POST /v1/chat/completions</code>, <code>POST /v1/messages</code>, "
        "<code>POST /v1/images/generations</code>, <code>GET /v1/models</code>, "
        "<code>POST /api/v1/compare</code>, <code>GET /api/v1/routes</code>, "
        "<code>GET /api/v1/tasks</code>, <code>GET /metrics</code>, <code>GET /healthz</code></p>"
        f"<h2>Providers in use</h2><table>{''.join(prov)}</table>"
        "<h2>Routes</h2><table><tr><th>route</th><th>strategy</th><th>pool (first is primary)"
        f"</th></tr>{''.join(rows)}</table>"
    )
