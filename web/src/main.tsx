import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentUser, logOut, onSessionChange } from "./api";
import { go, useRoute } from "./router";
import { SignIn } from "./pages/auth";
import { Catalogue, ProductPage } from "./pages/catalogue";
import { CartPage } from "./pages/cart";
import { OrderPage, Orders } from "./pages/orders";
import { Notifications } from "./pages/notifications";
import { Assistant } from "./pages/assistant";
import { SellerAnalytics, SellerProducts, SellerShipments } from "./pages/seller";
import { AdminSellers } from "./pages/admin";
import "./style.css";

function App() {
  const [user, setUser] = useState(currentUser);
  useEffect(() => onSessionChange(() => setUser(currentUser())), []);
  const route = useRoute();
  const [page, id] = route;

  const links: [string, string][] = [["#/", "Shop"]];
  if (user) {
    if (user.role === "customer") links.push(["#/cart", "Cart"], ["#/orders", "Orders"], ["#/assistant", "Assistant"]);
    if (user.role === "seller")
      links.push(["#/seller", "My products"], ["#/seller/shipments", "Shipments"], ["#/seller/analytics", "Analytics"]);
    if (user.role === "admin") links.push(["#/admin", "Sellers"]);
    links.push(["#/notifications", "Notifications"]);
  }

  let content;
  const needsSignIn = !user && page && page !== "products" && page !== "login" && page !== "register";
  if (needsSignIn || page === "login" || page === "register") {
    content = <SignIn mode={page === "register" ? "register" : "login"} />;
  } else if (page === "products" && id) content = <ProductPage productId={id} />;
  else if (page === "cart") content = <CartPage />;
  else if (page === "orders" && id) content = <OrderPage orderId={id} />;
  else if (page === "orders") content = <Orders />;
  else if (page === "notifications") content = <Notifications />;
  else if (page === "assistant") content = <Assistant />;
  else if (page === "seller" && id === "shipments") content = <SellerShipments />;
  else if (page === "seller" && id === "analytics") content = <SellerAnalytics />;
  else if (page === "seller") content = <SellerProducts />;
  else if (page === "admin") content = <AdminSellers />;
  else content = <Catalogue />;

  return (
    <>
      <header>
        <a class="brand" href="#/">
          ecommerce-rs
        </a>
        <nav aria-label="Main">
          {links.map(([href, label]) => (
            <a href={href} key={href}>
              {label}
            </a>
          ))}
        </nav>
        <div class="who">
          {user ? (
            <>
              <span aria-label="Signed in as">{user.name}</span>
              <button type="button" onClick={() => void logOut().then(() => go("/"))}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <a href="#/login">Sign in</a>
              <a href="#/register">Create account</a>
            </>
          )}
        </div>
      </header>
      <main>{content}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
