import { useState } from "preact/hooks";
import { logIn, register } from "../api";
import { go } from "../router";
import { Problem } from "./parts";

export function SignIn({ mode }: { mode: "login" | "register" }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    setBusy(true);
    const problem =
      mode === "login"
        ? await logIn(email, password)
        : await register(email, password, String(form.get("name")), form.get("role") === "seller" ? "seller" : "customer");
    setBusy(false);
    setError(problem);
    // Signed in on the sign-in page: to the shop. Elsewhere the page asked for comes up by itself.
    if (!problem && /^#\/(login|register)/.test(location.hash)) go("/");
  };
  return (
    <section class="narrow">
      <h1>{mode === "login" ? "Sign in" : "Create an account"}</h1>
      <form onSubmit={submit}>
        {mode === "register" && (
          <label>
            Name <input name="name" required autoComplete="name" />
          </label>
        )}
        <label>
          Email <input name="email" type="email" required autoComplete="email" />
        </label>
        <label>
          Password{" "}
          <input
            name="password"
            type="password"
            required
            minLength={mode === "register" ? 8 : undefined}
            autoComplete={mode === "login" ? "current-password" : "new-password"}
          />
        </label>
        {mode === "register" && (
          <fieldset>
            <legend>I want to</legend>
            <label class="inline">
              <input type="radio" name="role" value="customer" defaultChecked /> buy
            </label>
            <label class="inline">
              <input type="radio" name="role" value="seller" /> sell
            </label>
          </fieldset>
        )}
        <Problem text={error} />
        <button type="submit" disabled={busy}>
          {mode === "login" ? "Sign in" : "Create account"}
        </button>
      </form>
      <p>
        {mode === "login" ? <a href="#/register">No account yet? Create one</a> : <a href="#/login">Have an account? Sign in</a>}
      </p>
    </section>
  );
}
