import { useState } from "preact/hooks";
import { api, currentUser, money, problemText, when, type Schemas } from "../api";
import { useLoad } from "../load";
import { allProducts } from "./catalogue";
import { Loading, StatusTabs, Price, Problem } from "./parts";

type Product = Schemas["Product"];

export function SellerProducts() {
  const me = useLoad(() => api.GET("/sellers/me"), []);
  // The catalogue has no filter by seller: a seller's own products are picked from it.
  const products = useLoad(() => allProducts(), []);
  const [error, setError] = useState<string | null>(null);
  const mine = (products.data ?? []).filter((p) => p.seller_id === currentUser()?.user_id);
  const create = async (event: Event) => {
    event.preventDefault();
    const element = event.target as HTMLFormElement;
    const form = new FormData(element);
    const { data, error, response } = await api.POST("/products", {
      body: {
        name: String(form.get("name")),
        description: String(form.get("description") ?? ""),
        category: String(form.get("category")),
        price_cents: Math.round(Number(form.get("price")) * 100),
        stock: Number(form.get("stock")),
      },
    });
    setError(data ? null : problemText(error, response));
    if (data) {
      element.reset();
      await products.reload();
    }
  };
  return (
    <section>
      <h1>My products</h1>
      <Problem text={me.error} />
      {me.data && (
        <p>
          Seller status: <strong aria-label="Seller status">{me.data.status}</strong>
          {me.data.status === "pending" && " — an admin approves new sellers before they can list products."}
        </p>
      )}
      <form onSubmit={create} aria-labelledby="new-product" class="panel">
        <h2 id="new-product">New product</h2>
        <label>
          Name <input name="name" required maxLength={200} />
        </label>
        <label>
          Description <textarea name="description" maxLength={2000} />
        </label>
        <label>
          Category <input name="category" required maxLength={200} />
        </label>
        <label>
          Price (USD) <input name="price" type="number" min="0.01" step="0.01" required />
        </label>
        <label>
          Stock <input name="stock" type="number" min="0" step="1" required />
        </label>
        <button type="submit">List product</button>
        <Problem text={error} />
      </form>
      <Problem text={products.error} />
      {!products.data && !products.error && <Loading />}
      <ul class="list" aria-label="My products">
        {mine.map((p) => (
          <SellerProduct key={p.product_id} product={p} onChanged={() => void products.reload()} />
        ))}
      </ul>
    </section>
  );
}

function SellerProduct({ product, onChanged }: { product: Product; onChanged: () => void }) {
  const [price, setPrice] = useState((product.price_cents / 100).toFixed(2));
  const [stock, setStock] = useState(String(product.stock));
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const path = { params: { path: { product_id: product.product_id } } };
  const save = async (event: Event) => {
    event.preventDefault();
    const { data, error, response } = await api.PATCH("/products/{product_id}", {
      ...path,
      body: { price_cents: Math.round(Number(price) * 100), stock: Number(stock) },
    });
    setError(data ? null : problemText(error, response));
    setMessage(data ? "Saved." : null);
  };
  const remove = async () => {
    const { error, response } = await api.DELETE("/products/{product_id}", path);
    if (response.ok) onChanged();
    else setError(problemText(error, response));
  };
  return (
    <li>
      <form onSubmit={save} class="row" aria-label={product.name}>
        <strong class="grow">{product.name}</strong>
        <label>
          Price of {product.name}{" "}
          <input type="number" min="0.01" step="0.01" value={price} onInput={(e) => setPrice(e.currentTarget.value)} />
        </label>
        <label>
          Stock of {product.name}{" "}
          <input type="number" min="0" step="1" value={stock} onInput={(e) => setStock(e.currentTarget.value)} />
        </label>
        <button type="submit" aria-label={`Save ${product.name}`}>
          Save
        </button>
        <button type="button" aria-label={`Delete ${product.name}`} onClick={() => void remove()}>
          Delete
        </button>
      </form>
      <span role="status">{message}</span>
      <Problem text={error} />
    </li>
  );
}

export function SellerShipments() {
  const [status, setStatus] = useState<"pending" | "shipped" | "delivered">("pending");
  const shipments = useLoad(() => api.GET("/seller/shipments", { params: { query: { status, limit: 50 } } }), [status], {
    everyMs: 3000,
    while: () => true,
  });
  return (
    <section>
      <h1>Shipments</h1>
      <StatusTabs label="Shipment status" options={["pending", "shipped", "delivered"] as const} value={status} onChange={setStatus} />
      <Problem text={shipments.error} />
      {!shipments.data && !shipments.error && <Loading />}
      {shipments.data?.items.length === 0 && <p>No {status} shipments.</p>}
      <ul class="list" aria-label={`${status} shipments`}>
        {shipments.data?.items.map((s) => (
          <Shipment key={s.shipment_id} shipment={s} onChanged={() => void shipments.reload()} />
        ))}
      </ul>
    </section>
  );
}

function Shipment({ shipment, onChanged }: { shipment: Schemas["Shipment"]; onChanged: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const what = shipment.items.map((i) => `${i.quantity} × ${i.name}`).join(", ");
  const path = { params: { path: { shipment_id: shipment.shipment_id } } };
  const ship = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const { data, error, response } = await api.POST("/seller/shipments/{shipment_id}/ship", {
      ...path,
      body: { carrier: String(form.get("carrier")), tracking_number: String(form.get("tracking")) },
    });
    setError(data ? null : problemText(error, response));
    if (data) onChanged();
  };
  const deliver = async () => {
    const { data, error, response } = await api.POST("/seller/shipments/{shipment_id}/deliver", path);
    setError(data ? null : problemText(error, response));
    if (data) onChanged();
  };
  const to = shipment.ship_to;
  return (
    <li aria-label={`Shipment of ${what}`}>
      <p>
        <strong>{what}</strong> <span class="muted">since {when(shipment.created_at)}</span>
      </p>
      {to && (
        <address>
          {to.name}, {to.line1}
          {to.line2 ? `, ${to.line2}` : ""}, {to.postal_code} {to.city}, {to.country}
        </address>
      )}
      {shipment.status === "pending" && (
        <form onSubmit={ship} class="row">
          <label>
            Carrier <input name="carrier" required maxLength={64} />
          </label>
          <label>
            Tracking number <input name="tracking" required maxLength={64} />
          </label>
          <button type="submit">Mark shipped</button>
        </form>
      )}
      {shipment.status === "shipped" && (
        <p class="row">
          {shipment.carrier} {shipment.tracking_number}
          <button type="button" onClick={() => void deliver()}>
            Mark delivered
          </button>
        </p>
      )}
      <Problem text={error} />
    </li>
  );
}

export function SellerAnalytics() {
  const summary = useLoad(() => api.GET("/analytics/summary"), []);
  const s = summary.data;
  if (summary.error) return <Problem text={summary.error} />;
  if (!s) return <Loading />;
  const most = Math.max(1, ...s.top_products.map((p) => p.units));
  const bar = 28;
  return (
    <section>
      <h1>Analytics</h1>
      <dl class="figures">
        <div>
          <dt>Orders</dt>
          <dd>{s.orders}</dd>
        </div>
        <div>
          <dt>Units sold</dt>
          <dd>{s.units_sold}</dd>
        </div>
        <div>
          <dt>Revenue</dt>
          <dd>
            <Price cents={s.revenue_cents} />
          </dd>
        </div>
      </dl>
      <h2 id="top-products">Top products</h2>
      {s.top_products.length === 0 ? (
        <p>No sales yet.</p>
      ) : (
        <svg
          role="img"
          aria-labelledby="top-products"
          viewBox={`0 0 400 ${s.top_products.length * bar}`}
          class="chart"
        >
          <title>{s.top_products.map((p) => `${p.name}: ${p.units} units`).join("; ")}</title>
          {s.top_products.map((p, i) => (
            <g key={p.product_id} transform={`translate(0 ${i * bar})`}>
              <rect x="150" y="4" height={bar - 8} width={(p.units / most) * 200} rx="3" />
              <text x="144" y={bar / 2 + 4} text-anchor="end">
                {p.name.length > 20 ? `${p.name.slice(0, 19)}…` : p.name}
              </text>
              <text x={156 + (p.units / most) * 200} y={bar / 2 + 4}>
                {p.units}
              </text>
            </g>
          ))}
        </svg>
      )}
      <p class="muted">Revenue counts an order once its payment settles ({money(s.revenue_cents)} so far).</p>
    </section>
  );
}
