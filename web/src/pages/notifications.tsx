import { useEffect, useState } from "preact/hooks";
import { api, problemText, when, type Schemas } from "../api";
import { useLoad } from "../load";
import { Loading, Problem } from "./parts";

export function Notifications() {
  // Notifications arrive as events are handled: the inbox looks again every few seconds.
  const inbox = useLoad(() => api.GET("/notifications", { params: { query: { limit: 50 } } }), [], {
    everyMs: 3000,
    while: () => true,
  });
  return (
    <section>
      <h1>Notifications</h1>
      <Preferences />
      <h2>Inbox</h2>
      <Problem text={inbox.error} />
      {!inbox.data && !inbox.error && <Loading />}
      {inbox.data?.items.length === 0 && <p>Nothing yet.</p>}
      <ul class="list" aria-label="Inbox">
        {inbox.data?.items.map((n) => (
          <li key={n.notification_id}>
            <details>
              <summary>
                <strong>{n.subject}</strong> <span class="muted">{when(n.created_at)}</span>
              </summary>
              <p class="pre">{n.body}</p>
              <p class="muted">
                {n.deliveries.map((d) => `${d.channel}: ${d.status}`).join(" · ") || "not delivered yet"}
              </p>
            </details>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Preferences() {
  const loaded = useLoad(() => api.GET("/notifications/preferences"), []);
  const [prefs, setPrefs] = useState<Schemas["NotificationPreferences"] | undefined>(undefined);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setPrefs(loaded.data), [loaded.data]);
  if (!prefs) return <Problem text={loaded.error} />;
  const save = async (event: Event) => {
    event.preventDefault();
    const { data, error, response } = await api.PUT("/notifications/preferences", {
      body: { ...prefs, phone_number: prefs.phone_number || null },
    });
    setError(data ? null : problemText(error, response));
    setMessage(data ? "Preferences saved." : null);
    if (data) setPrefs(data);
  };
  return (
    <form onSubmit={save} aria-labelledby="preferences">
      <h2 id="preferences">Preferences</h2>
      {(["email", "sms", "push"] as const).map((channel) => (
        <label class="inline" key={channel}>
          <input
            type="checkbox"
            checked={prefs[channel]}
            onChange={(e) => setPrefs({ ...prefs, [channel]: e.currentTarget.checked })}
          />{" "}
          {channel === "sms" ? "SMS" : channel === "push" ? "Push" : "Email"}
        </label>
      ))}
      <label>
        Phone number (for SMS){" "}
        <input
          type="tel"
          placeholder="+15555550100"
          value={prefs.phone_number ?? ""}
          onInput={(e) => setPrefs({ ...prefs, phone_number: e.currentTarget.value })}
        />
      </label>
      <button type="submit">Save preferences</button>
      <p role="status">{message}</p>
      <Problem text={error} />
    </form>
  );
}
