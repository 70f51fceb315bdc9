/** Stylesheets imported for esbuild to bundle (into `<entry>.css`); they export nothing. */
declare module "*.css";
