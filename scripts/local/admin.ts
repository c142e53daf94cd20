import { randomBytes } from "node:crypto";
import { grantRole } from "../grant-role";

/** Creates an admin on a running local API (sign up, grant the role through the Data API, sign in). */
export async function bootstrapAdmin(
  baseUrl: string,
  dataApi: { DATA_API_URL: string; DATA_API_KEY: string },
): Promise<{ username: string; password: string; accessToken: string }> {
  const username = `admin_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(18).toString("base64url");
  const post = (path: string, body: unknown) =>
    fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  // Signup accepts the current terms and privacy policy, which the API publishes.
  const legal = (await (await fetch(`${baseUrl}/v1/legal`)).json()) as { termsVersion: string; privacyVersion: string };
  const signup = await post("/v1/auth/signup", { username, email: `${username}@localhost.test`, password, ...legal });
  if (signup.status !== 201) throw new Error(`admin signup failed: ${signup.status} ${await signup.text()}`);
  if (!(await grantRole(dataApi, username, "admin"))) throw new Error("granting the admin role failed");
  const login = await post("/v1/auth/login", { login: username, password });
  if (login.status !== 200) throw new Error(`admin login failed: ${login.status}`);
  const { accessToken } = (await login.json()) as { accessToken: string };
  return { username, password, accessToken };
}
