import { useMemo, useState } from "preact/hooks";
import { api, currentUser, problemText, type Schemas } from "../api";
import { useLoad } from "../load";
import { Loading, Price, Problem } from "./parts";

type Product = Schemas["Product"];

/** Every product of the catalogue (or of one category), page after page. */
export async function allProducts(category?: string) {
  const items: Product[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const answer = await api.GET("/products", { params: { query: { limit: 100, cursor, category } } });
    if (!answer.data) return answer;
    items.push(...answer.data.items);
    if (!answer.data.next_cursor) break;
    cursor = answer.data.next_cursor;
  }
  return { data: items, response: new Response() };
}

export function Catalogue() {
  const products = useLoad(() => allProducts(), []);
  const [category, setCategory] = useState("");
  const [search, setSearch] = useState("");
  const categories = useMemo(() => [...new Set((products.data ?? []).map((p) => p.category))].sort(), [products.data]);
  // The API lists by category; the search is over what it listed (name and description).
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = (products.data ?? []).filter(
    (p) =>
      (!category || p.category === category) &&
      words.every((w) => p.name.toLowerCase().includes(w) || p.description.toLowerCase().includes(w)),
  );
  const customer = currentUser()?.role === "customer";
  return (
    <section>
      <h1>Catalogue</h1>
      <div class="filters" role="search">
        <label>
          Search <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <label>
          Category{" "}
          <select value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            <option value="">All categories</option>
            {categories.map((c) => (
              <option value={c} key={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Problem text={products.error} />
      {!products.data && !products.error && <Loading />}
      {products.data && shown.length === 0 && <p>Nothing matches.</p>}
      <ul class="grid" aria-label="Products">
        {shown.map((p) => (
          <li key={p.product_id} class="card">
            <a href={`#/products/${p.product_id}`}>
              <strong>{p.name}</strong>
            </a>
            <span class="muted">{p.category}</span>
            <Price cents={p.price_cents} />
            <span class="muted">{p.stock > 0 ? `${p.stock} in stock` : "Sold out"}</span>
          </li>
        ))}
      </ul>
      {customer && <Recommendations />}
    </section>
  );
}

function Recommendations() {
  const recommended = useLoad(() => api.GET("/recommendations", { params: { query: { limit: 6 } } }), []);
  const reasons = { bought_together: "bought together", category_affinity: "you like this category", popular: "popular" };
  if (!recommended.data?.items.length) return null;
  return (
    <section aria-labelledby="recommended">
      <h2 id="recommended">Recommended for you</h2>
      <ul class="grid">
        {recommended.data.items.map((r) => (
          <li key={r.product_id} class="card">
            <a href={`#/products/${r.product_id}`}>{r.name}</a>
            <span class="muted">{reasons[r.reason]}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ProductPage({ productId }: { productId: string }) {
  const product = useLoad(() => api.GET("/products/{product_id}", { params: { path: { product_id: productId } } }), [productId]);
  const [quantity, setQuantity] = useState(1);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const user = currentUser();
  const add = async () => {
    setMessage(null);
    // The cart keeps one line per product: adding sets the line to what it had plus this.
    const cart = await api.GET("/cart");
    const had = cart.data?.items.find((i) => i.product_id === productId)?.quantity ?? 0;
    const { data, error, response } = await api.PUT("/cart/items/{product_id}", {
      params: { path: { product_id: productId } },
      body: { quantity: had + quantity },
    });
    if (data) {
      setError(null);
      setMessage(`Added to your cart (${data.items.length} ${data.items.length === 1 ? "line" : "lines"}).`);
    } else setError(problemText(error, response));
  };
  const p = product.data;
  return (
    <section class="narrow">
      <Problem text={product.error} />
      {!p && !product.error && <Loading />}
      {p && (
        <>
          <h1>{p.name}</h1>
          <p class="muted">{p.category}</p>
          <p>{p.description}</p>
          <p>
            <Price cents={p.price_cents} /> · {p.stock > 0 ? `${p.stock} in stock` : "Sold out"}
          </p>
          {user?.role === "customer" && p.stock > 0 && (
            <div class="row">
              <label>
                Quantity{" "}
                <input
                  type="number"
                  min={1}
                  max={99}
                  value={quantity}
                  onInput={(e) => setQuantity(Math.max(1, Math.min(99, Number(e.currentTarget.value) || 1)))}
                />
              </label>
              <button type="button" onClick={() => void add()}>
                Add to cart
              </button>
            </div>
          )}
          {!user && (
            <p>
              <a href="#/login">Sign in</a> to buy.
            </p>
          )}
          <p role="status">{message}</p>
          <Problem text={error} />
        </>
      )}
    </section>
  );
}
