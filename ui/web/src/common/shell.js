// The frame both apps share: a header with the app's pages, the signed-in
// user and sign-out; a hash router (#/path); the login when the broker asks
// for credentials (a form for basic authentication, the provider's page for
// OpenID Connect, as config.json says); live refresh by polling; and
// messages to the user.
import { api, ApiError, forget, onUnauthorized, rememberBasic } from "./api.js";
import { field, h, mount } from "./dom.js";
import { beginSignIn, completeSignIn } from "./oidc.js";

/** How often a page re-reads what it shows (ms). */
export const REFRESH_MS = 2000;

let current = { timers: [], disposers: [] };

/**
 * Calls `refresh` now and every REFRESH_MS until the page changes; a failure
 * is shown, not thrown, and the next round tries again.
 */
export function live(refresh, ms = REFRESH_MS) {
  const view = current;
  let running = false;
  const round = async () => {
    if (running || view !== current) return;
    running = true;
    try {
      await refresh();
    } catch (e) {
      if (view === current) report(e);
    } finally {
      running = false;
    }
  };
  view.timers.push(setInterval(round, ms));
  return round();
}

/** Runs `dispose` when the page changes (a diagram viewer, a form). */
export function onLeave(dispose) {
  current.disposers.push(dispose);
}

let messages;

/** Shows `text` in the message area: "ok" politely, "error" as an alert. */
export function notify(text, kind = "ok") {
  const item = h("div", { class: `message message-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  messages.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 4000);
}

/** Shows an error, naming the broker's problem when there is one. */
export function report(error) {
  if (error instanceof ApiError && error.status === 401) return;
  notify(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error.message || error), "error");
}

/**
 * Runs `action` (a command) from a control: disables `button` meanwhile,
 * tells the outcome with `done`, and returns whether it succeeded.
 */
export async function act(button, action, done) {
  if (button) button.disabled = true;
  try {
    await action();
    if (done) notify(done);
    return true;
  } catch (e) {
    report(e);
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Navigates to `#<path>`. */
export function go(path) {
  location.hash = `#${path}`;
}

/** A link to `#<path>`. */
export function link(path, ...children) {
  return h("a", { href: `#${path}` }, ...children);
}

/**
 * Starts app `name` ("Operate" or "Tasklist"): `nav` lists [path, label] of
 * the header, `routes` [regex, page] where page(main, ...captures) renders
 * into `main`. The first route is the home page.
 */
export function start({ name, nav, routes }) {
  document.title = `${name} · waggle`;
  const main = h("main", { id: "main", tabindex: "-1" });
  const user = h("span", { class: "user" });
  const signOut = h("button", { type: "button", class: "link", hidden: true, onclick: () => { forget(); showLogin(); } }, "Sign out");
  const other = name === "Operate" ? ["/tasklist/", "Tasklist"] : ["/operate/", "Operate"];
  messages = h("div", { class: "messages", "aria-live": "polite" });
  const links = nav.map(([path, label]) => h("a", { href: `#${path}`, "data-path": path }, label));
  document.body.replaceChildren(
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: "#/" }, `waggle ${name}`),
      h("nav", { "aria-label": name }, links, h("a", { href: other[0] }, other[1])),
      h("div", { class: "account" }, user, signOut),
    ),
    messages,
    main,
  );

  function leave() {
    current.timers.forEach(clearInterval);
    current.disposers.forEach((d) => d());
    current = { timers: [], disposers: [] };
  }

  async function render() {
    leave();
    const path = location.hash.replace(/^#/, "") || "/";
    const page = path.split("?")[0];
    for (const a of links) {
      const here = page === a.dataset.path || (a.dataset.path !== "/" && page.startsWith(a.dataset.path));
      if (here) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    for (const [pattern, page] of routes) {
      const match = path.match(pattern);
      if (match) {
        mount(main, h("p", { class: "loading" }, "Loading…"));
        try {
          await page(main, ...match.slice(1).map(decodeURIComponent));
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 401)) {
            mount(main, h("p", { role: "alert" }, `This page could not be shown: ${e.message}`));
          }
        }
        return;
      }
    }
    mount(main, h("h1", {}, "Not found"), h("p", {}, link("/", `Back to ${name}`)));
  }

  let config = { login: "basic" };

  function showLogin(problem) {
    leave();
    user.textContent = "";
    signOut.hidden = true;
    if (config.login === "oidc") {
      mount(
        main,
        h(
          "div",
          { class: "login" },
          h("h1", {}, `Sign in to ${name}`),
          problem?.detail ? h("p", { class: "error", role: "alert" }, problem.detail) : null,
          config.clientId
            ? h("button", { type: "button", onclick: () => beginSignIn(config).catch(report) }, "Sign in with OpenID Connect")
            : h("p", { role: "alert" }, "Signing in with OpenID Connect needs security.oidc_ui_client_id in the broker's configuration."),
        ),
      );
      return;
    }
    const username = h("input", { name: "username", autocomplete: "username", required: true });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const error = h("p", { class: "error", role: "alert" }, problem ? problem.detail || "" : "");
    const form = h(
      "form",
      {
        class: "login",
        "aria-label": "Sign in",
        onsubmit: async (event) => {
          event.preventDefault();
          rememberBasic(username.value, password.value);
          if (!(await whoAmI())) {
            error.textContent = "The user name or password is wrong.";
            return;
          }
          render();
        },
      },
      h("h1", {}, `Sign in to ${name}`),
      field("User name", username),
      field("Password", password),
      error,
      h("button", { type: "submit" }, "Sign in"),
    );
    mount(main, form);
    username.focus();
  }

  async function whoAmI() {
    try {
      const me = await api("GET", "/authentication/me", undefined, { quiet: true });
      user.textContent = me.displayName || me.username;
      signOut.hidden = !me.canLogout;
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return false;
      throw e;
    }
  }

  onUnauthorized((problem) => {
    forget();
    showLogin(problem);
  });
  window.addEventListener("hashchange", render);
  (async () => {
    const response = await fetch("config.json");
    if (response.ok) config = await response.json();
    if (config.login === "oidc") {
      try {
        await completeSignIn(config);
      } catch (e) {
        report(e);
      }
    }
    if (await whoAmI()) render();
    else showLogin();
  })().catch((e) => mount(main, h("p", { role: "alert" }, `The broker cannot be reached: ${e.message}`)));
}
