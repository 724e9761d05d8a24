// Globals of the viewer pages that TypeScript's DOM library does not know (checked by `make lint-js`).

/** OpenSeadragon 6, loaded by view.html as a classic script from /vendor/openseadragon/. */
declare var OpenSeadragon: any;

/** What view.html's script exposes for tests and the console (pages/view.js). */
interface PlexzoomViewerPage {
  viewer: any;
  image: any;
  mode: "proxy" | "range" | "mix" | null;
  mixer: import("./lib/compositor.js").Compositor | null;
  panel: import("./lib/channelpanel.js").ChannelPanel | null;
  token: import("./lib/deepzoom.js").TileToken | null;
  cursor: import("./lib/cursorvalues.js").CursorValues | null;
  /** The request the Snapshot dialog's Download would send now (lib/snapshot.js). */
  snapshotRequest?: () => any;
  ready: Promise<any>;
}

interface Window {
  plexzoom: PlexzoomViewerPage;
}

/** Uppy 5's ESM bundle, served from viewer/node_modules/uppy/dist (lib/resumable.js). */
declare module "*/uppy/uppy.min.mjs" {
  export const Uppy: any;
  export const Dashboard: any;
  export const AwsS3: any;
  export const GoldenRetriever: any;
}
