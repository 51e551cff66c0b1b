// A hash router: the app's pages live after `#`, so no page path can collide with an API route
// on the shared origin (`/orders` is the API's; `/#/orders` is the page).
import { useEffect, useState } from "preact/hooks";

export function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "").split("/").filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function go(path: string): void {
  location.hash = path;
}
