import { router } from "../../http/openapi";
export const journalRoutes = router();
