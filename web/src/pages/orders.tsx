import { api, money, problemText, when, type Schemas } from "../api";
import { useLoad } from "../load";
import { Loading, Price, Problem } from "./parts";
import { useState } from "preact/hooks";

type Order = Schemas["Order"];

const STEPS = ["placed", "paid", "shipped", "delivered"] as const;
const FINAL: Order["status"][] = ["delivered", "cancelled", "payment_failed"];
const LABEL: Record<Order["status"], string> = {
  placed: "Placed",
  paid: "Paid",
  shipped: "Shipped",
  delivered: "Delivered",
  cancelled: "Cancelled",
  payment_failed: "Payment failed",
};

export function Orders() {
  const orders = useLoad(() => api.GET("/orders", { params: { query: { limit: 50 } } }), []);
  if (orders.error) return <Problem text={orders.error} />;
  if (!orders.data) return <Loading />;
  return (
    <section>
      <h1>Your orders</h1>
      {orders.data.items.length === 0 && <p>No orders yet.</p>}
      <ul class="list" aria-label="Orders">
        {orders.data.items.map((o) => (
          <li key={o.order_id}>
            <a href={`#/orders/${o.order_id}`}>Order of {when(o.created_at)}</a> · {money(o.total_cents)} ·{" "}
            <span class={`status ${o.status}`}>{LABEL[o.status]}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** One order, polled until it reaches a final state: its timeline moves as events arrive. */
export function OrderPage({ orderId }: { orderId: string }) {
  const order = useLoad(
    () => api.GET("/orders/{order_id}", { params: { path: { order_id: orderId } } }),
    [orderId],
    { everyMs: 1500, while: (o) => !FINAL.includes(o.status) },
  );
  const [error, setError] = useState<string | null>(null);
  const o = order.data;
  if (order.error && !o) return <Problem text={order.error} />;
  if (!o) return <Loading />;
  const reached = (step: Order["status"]) => o.history.find((h) => h.status === step);
  const cancel = async () => {
    const { error, response } = await api.POST("/orders/{order_id}/cancel", { params: { path: { order_id: orderId } } });
    setError(response.ok ? null : problemText(error, response));
    await order.reload();
  };
  return (
    <section>
      <h1>Order</h1>
      <p>
        Status: <strong aria-label="Order status" class={`status ${o.status}`}>{LABEL[o.status]}</strong>
      </p>
      <ol class="timeline" aria-label="Order timeline">
        {(o.status === "cancelled" || o.status === "payment_failed" ? [...o.history.map((h) => h.status)] : STEPS).map((step) => {
          const at = reached(step);
          return (
            <li key={step} class={at ? "done" : "todo"}>
              <span>{LABEL[step]}</span> {at && <time dateTime={at.at}>{when(at.at)}</time>}
            </li>
          );
        })}
      </ol>
      <table>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Quantity</th>
            <th scope="col">Price</th>
          </tr>
        </thead>
        <tbody>
          {o.items.map((line) => (
            <tr key={line.product_id}>
              <td>{line.name}</td>
              <td>{line.quantity}</td>
              <td>
                <Price cents={line.unit_price_cents * line.quantity} />
              </td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={2}>
              Total
            </th>
            <td>
              <Price cents={o.total_cents} />
            </td>
          </tr>
        </tfoot>
      </table>
      {o.shipments.length > 0 && (
        <>
          <h2>Shipments</h2>
          <ul class="list" aria-label="Shipments">
            {o.shipments.map((s) => (
              <li key={s.shipment_id}>
                {s.items.map((i) => `${i.quantity} × ${i.name}`).join(", ")}: <strong>{s.status}</strong>
                {s.carrier && ` · ${s.carrier} ${s.tracking_number ?? ""}`}
              </li>
            ))}
          </ul>
        </>
      )}
      {(o.status === "placed" || o.status === "paid") && (
        <button type="button" onClick={() => void cancel()}>
          Cancel order
        </button>
      )}
      <Problem text={error} />
    </section>
  );
}
