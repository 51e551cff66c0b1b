import { useRef, useState } from "preact/hooks";
import { api, problemText, type Schemas } from "../api";
import { useLoad } from "../load";
import { go } from "../router";
import { Loading, Price, Problem } from "./parts";

type Cart = Schemas["Cart"];

const CARDS = [
  ["pm_card_visa", "Visa ending 4242 (test card, accepted)"],
  ["pm_card_visa_chargeDeclined", "Visa ending 0002 (test card, declined)"],
] as const;

export function CartPage() {
  const loaded = useLoad(() => api.GET("/cart"), []);
  const [cart, setCart] = useState<Cart | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const shown = cart ?? loaded.data;
  const name = (id: string) => shown?.items.find((i) => i.product_id === id)?.name ?? "A product";

  const setQuantity = async (productId: string, quantity: number) => {
    const { data, error, response } = await api.PUT("/cart/items/{product_id}", {
      params: { path: { product_id: productId } },
      body: { quantity },
    });
    if (data) setCart(data);
    setError(data ? null : problemText(error, response, name));
  };

  if (loaded.error) return <Problem text={loaded.error} />;
  if (!shown) return <Loading />;
  return (
    <section>
      <h1>Your cart</h1>
      {shown.items.length === 0 ? (
        <p>
          Your cart is empty. <a href="#/">Browse the catalogue</a>.
        </p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Price</th>
              <th scope="col">Quantity</th>
              <th scope="col">Total</th>
              <th scope="col">
                <span class="visually-hidden">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.items.map((item) => (
              <tr key={item.product_id}>
                <td>
                  <a href={`#/products/${item.product_id}`}>{item.name}</a>
                </td>
                <td>
                  <Price cents={item.unit_price_cents} />
                </td>
                <td>
                  <input
                    type="number"
                    min={0}
                    max={99}
                    aria-label={`Quantity of ${item.name}`}
                    value={item.quantity}
                    onChange={(e) => void setQuantity(item.product_id, Number(e.currentTarget.value))}
                  />
                </td>
                <td>
                  <Price cents={item.line_total_cents} />
                </td>
                <td>
                  <button type="button" aria-label={`Remove ${item.name}`} onClick={() => void setQuantity(item.product_id, 0)}>
                    ✕
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={3}>
                Total
              </th>
              <td aria-label="Cart total">
                <Price cents={shown.total_cents} />
              </td>
            </tr>
          </tfoot>
        </table>
      )}
      <Problem text={error} />
      {shown.items.length > 0 && <Checkout names={name} onCartChanged={() => void loaded.reload().then(() => setCart(undefined))} />}
    </section>
  );
}

function Checkout({ names, onCartChanged }: { names: (id: string) => string; onCartChanged: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // One key per attempt: a retry after a timeout or a 503 is the same checkout (never a
  // second charge); a definite answer ends the attempt, and the next one gets a new key.
  const attempt = useRef<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const form = new FormData(event.target as HTMLFormElement);
    const field = (k: string) => String(form.get(k) ?? "").trim();
    attempt.current ??= crypto.randomUUID();
    setBusy(true);
    setError(null);
    try {
      const { data, error, response } = await api.POST("/cart/checkout", {
        params: { header: { "Idempotency-Key": attempt.current } },
        body: {
          payment_token: field("card"),
          shipping_address: {
            name: field("ship_name"),
            line1: field("line1"),
            line2: field("line2") || null,
            city: field("city"),
            postal_code: field("postal_code"),
            country: field("country") as Schemas["ShippingAddress"]["country"],
          },
        },
      });
      if (response.status !== 503) attempt.current = null;
      if (data) {
        go(`/orders/${data.order_id}`);
        return;
      }
      const text = problemText(error, response, names);
      setError(response.status === 503 ? `${text}\nPress "Place order" again: it resumes the same checkout.` : text);
      // A price change or a shortage changed what the cart shows.
      if (response.status === 409) onCartChanged();
    } catch {
      setError('The shop did not answer. Press "Place order" again: it resumes the same checkout, never a second charge.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} aria-labelledby="checkout">
      <h2 id="checkout">Checkout</h2>
      <fieldset>
        <legend>Shipping address</legend>
        <label>
          Full name <input name="ship_name" required autoComplete="name" maxLength={100} />
        </label>
        <label>
          Address line 1 <input name="line1" required autoComplete="address-line1" maxLength={200} />
        </label>
        <label>
          Address line 2 <input name="line2" autoComplete="address-line2" maxLength={200} />
        </label>
        <label>
          City <input name="city" required autoComplete="address-level2" maxLength={100} />
        </label>
        <label>
          Postal code <input name="postal_code" required autoComplete="postal-code" maxLength={20} />
        </label>
        <label>
          Country (2 letters) <input name="country" required autoComplete="country" pattern="[A-Z]{2}" defaultValue="US" maxLength={2} />
        </label>
      </fieldset>
      <fieldset>
        <legend>Card</legend>
        {CARDS.map(([token, label], i) => (
          <label class="inline" key={token}>
            <input type="radio" name="card" value={token} defaultChecked={i === 0} /> {label}
          </label>
        ))}
      </fieldset>
      <Problem text={error} />
      <button type="submit" disabled={busy}>
        {busy ? "Placing order…" : "Place order"}
      </button>
    </form>
  );
}
