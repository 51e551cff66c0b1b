import { useState } from "preact/hooks";
import { api, problemText, when, type Schemas } from "../api";
import { useLoad } from "../load";
import { Loading, StatusTabs, Problem } from "./parts";

export function AdminSellers() {
  const [status, setStatus] = useState<Schemas["SellerStatus"]>("pending");
  const sellers = useLoad(() => api.GET("/admin/sellers", { params: { query: { status, limit: 100 } } }), [status]);
  const [error, setError] = useState<string | null>(null);
  const act = async (seller: Schemas["Seller"], action: "approve" | "suspend") => {
    const path = { params: { path: { seller_id: seller.seller_id } } };
    let answer;
    if (action === "approve") answer = await api.POST("/admin/sellers/{seller_id}/approve", path);
    else {
      const reason = prompt(`Why suspend ${seller.name}?`);
      if (!reason) return;
      answer = await api.POST("/admin/sellers/{seller_id}/suspend", { ...path, body: { reason } });
    }
    setError(answer.data ? null : problemText(answer.error, answer.response));
    await sellers.reload();
  };
  return (
    <section>
      <h1>Sellers</h1>
      <StatusTabs label="Seller status" options={["pending", "approved", "suspended"] as const} value={status} onChange={setStatus} />
      <Problem text={sellers.error ?? error} />
      {!sellers.data && !sellers.error && <Loading />}
      {sellers.data?.items.length === 0 && <p>No {status} sellers.</p>}
      <ul class="list" aria-label={`${status} sellers`}>
        {sellers.data?.items.map((s) => (
          <li key={s.seller_id} class="row">
            <span class="grow">
              <strong>{s.name}</strong> {s.email} <span class="muted">since {when(s.created_at)}</span>
            </span>
            {s.status !== "approved" && (
              <button type="button" aria-label={`Approve ${s.name}`} onClick={() => void act(s, "approve")}>
                Approve
              </button>
            )}
            {s.status !== "suspended" && (
              <button type="button" aria-label={`Suspend ${s.name}`} onClick={() => void act(s, "suspend")}>
                Suspend
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
