import { useState } from "preact/hooks";
import { api, problemText } from "../api";
import { Problem } from "./parts";

interface Line {
  from: "you" | "assistant";
  text: string;
}

export function Assistant() {
  const [lines, setLines] = useState<Line[]>([
    { from: "assistant", text: "Hello! Ask me where your order is, or what to buy." },
  ]);
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const send = async (event: Event) => {
    event.preventDefault();
    const text = message.trim();
    if (!text || busy) return;
    setLines((l) => [...l, { from: "you", text }]);
    setMessage("");
    setBusy(true);
    const { data, error, response } = await api.POST("/assistant/messages", { body: { message: text } });
    setBusy(false);
    setError(data ? null : problemText(error, response));
    if (data) setLines((l) => [...l, { from: "assistant", text: data.reply }]);
  };
  return (
    <section class="narrow">
      <h1>Assistant</h1>
      <ol class="chat" aria-label="Conversation" aria-live="polite">
        {lines.map((line, i) => (
          <li key={i} class={line.from}>
            <span class="visually-hidden">{line.from === "you" ? "You:" : "Assistant:"}</span>
            {line.text}
          </li>
        ))}
      </ol>
      <form onSubmit={send} class="row">
        <label class="grow">
          <span class="visually-hidden">Message</span>
          <input value={message} onInput={(e) => setMessage(e.currentTarget.value)} placeholder="Where is my order?" />
        </label>
        <button type="submit" disabled={busy}>
          Send
        </button>
      </form>
      <Problem text={error} />
    </section>
  );
}
