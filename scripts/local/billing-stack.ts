import { generateKeyPairSync, randomBytes } from "node:crypto";
import {
  createAppStorePki,
  exportAppStorePki,
  importAppStorePki,
  type SerializedAppStorePki,
  startAppStoreServer,
} from "./appstore-server";
import { startPlayServer } from "./play-server";
import { newSecret, startStripeServer } from "./stripe-server";

/**
 * The billing stand-ins of the local stack: App Store notifications, Google Play (push, OAuth, Developer API)
 * and Stripe (webhooks, Checkout, subscriptions). Everything the Worker must trust — the App Store root, the
 * Play service-account key, the Stripe secrets — is chosen in the plan, before anything starts, so a Worker's
 * settings can be written first (tests) and the same settings serve dev.
 */
export interface BillingPlan {
  ports: { appstore: number; play: number; stripe: number };
  bundleId: string;
  packageName: string;
  appStorePki: SerializedAppStorePki;
  play: { privateKeyPem: string; keyId: string; clientEmail: string; pushAudience: string; pushServiceAccount: string };
  stripe: { webhookSecret: string; secretKey: string; pricePro: string; pricePremium: string };
  /** Where the Worker listens (dev), for the Stripe pay page's webhook deliveries. */
  workerUrl?: string;
}

export interface RunningBillingStandIns {
  urls: { appstore: string; play: string; stripe: string };
  stop(): Promise<void>;
}

export function newBillingPlan(ports: BillingPlan["ports"], workerUrl?: string): BillingPlan {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const base = workerUrl ?? "http://circle.test";
  return {
    ports,
    bundleId: "app.circle.local",
    packageName: "app.circle.local",
    appStorePki: exportAppStorePki(createAppStorePki()),
    play: {
      privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      keyId: randomBytes(20).toString("hex"),
      clientEmail: "play-developer-api@circle-local.iam.gserviceaccount.com",
      pushAudience: `${base}/v1/billing/google`,
      pushServiceAccount: "rtdn-push@circle-local.iam.gserviceaccount.com",
    },
    stripe: {
      webhookSecret: newSecret(),
      secretKey: `sk_test_${randomBytes(24).toString("base64url")}`,
      pricePro: "price_circle_pro_monthly",
      pricePremium: "price_circle_premium_monthly",
    },
    ...(workerUrl ? { workerUrl } : {}),
  };
}

export async function startBillingStandIns(
  plan: BillingPlan,
  log: (line: string) => void = () => {},
): Promise<RunningBillingStandIns> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const appstore = await startAppStoreServer({
      port: plan.ports.appstore,
      bundleId: plan.bundleId,
      environment: "Sandbox",
      pki: importAppStorePki(plan.appStorePki),
    });
    stops.push(appstore.stop);
    const play = await startPlayServer({
      port: plan.ports.play,
      packageName: plan.packageName,
      pushAudience: plan.play.pushAudience,
      pushServiceAccountEmail: plan.play.pushServiceAccount,
      serviceAccount: {
        privateKeyPem: plan.play.privateKeyPem,
        keyId: plan.play.keyId,
        clientEmail: plan.play.clientEmail,
      },
    });
    stops.push(play.stop);
    const stripe = await startStripeServer({
      port: plan.ports.stripe,
      webhookSecrets: [plan.stripe.webhookSecret],
      secretKey: plan.stripe.secretKey,
      ...(plan.workerUrl ? { webhookUrl: `${plan.workerUrl}/v1/billing/stripe` } : {}),
    });
    stops.push(stripe.stop);
    log(`billing stand-ins up: app store ${appstore.url}, google play ${play.url}, stripe ${stripe.url}`);
    return { urls: { appstore: appstore.url, play: play.url, stripe: stripe.url }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The Worker settings that point billing at the stand-ins (known from the plan alone). */
export function billingWorkerEnv(plan: BillingPlan): Record<string, string> {
  const play = `http://127.0.0.1:${plan.ports.play}`;
  return {
    APPSTORE_BUNDLE_ID: plan.bundleId,
    APPSTORE_ENVIRONMENTS: "Sandbox",
    APPSTORE_ROOT_CERTIFICATES: plan.appStorePki.root,
    PLAY_PACKAGE_NAME: plan.packageName,
    PLAY_PUSH_AUDIENCE: plan.play.pushAudience,
    PLAY_PUSH_SERVICE_ACCOUNT: plan.play.pushServiceAccount,
    PLAY_PUSH_JWKS_URL: `${play}/oauth2/v3/certs`,
    PLAY_API_URL: `${play}/androidpublisher/v3`,
    PLAY_SERVICE_ACCOUNT_JSON: JSON.stringify({
      type: "service_account",
      project_id: "circle-local",
      private_key_id: plan.play.keyId,
      private_key: plan.play.privateKeyPem,
      client_email: plan.play.clientEmail,
      token_uri: `${play}/token`,
    }),
    STRIPE_SECRET_KEY: plan.stripe.secretKey,
    STRIPE_WEBHOOK_SECRETS: plan.stripe.webhookSecret,
    STRIPE_API_URL: `http://127.0.0.1:${plan.ports.stripe}`,
    STRIPE_LIVE_MODE: "false",
    STRIPE_PRICE_PRO: plan.stripe.pricePro,
    STRIPE_PRICE_PREMIUM: plan.stripe.pricePremium,
  };
}
