/** Worker entry for the multi-thread bus tests: runs one role and posts its report. */
import type { BusLayout } from "../../../src/index.ts";
import { pingPong, publisher, StressPeer, subscriber } from "./roles.ts";

declare const self: Worker;

type Job =
  | { role: "stress"; layout: BusLayout; self: number; perDest: number }
  | {
      role: "ping";
      layout: BusLayout;
      self: number;
      peer: number;
      starts: boolean;
      wakeups: number;
      maxRounds: number;
    }
  | { role: "publisher"; layout: BusLayout; self: number; channel: number; count: number }
  | { role: "subscriber"; layout: BusLayout; self: number; channel: number };

self.onmessage = (event: MessageEvent<Job>) => {
  const job = event.data;
  switch (job.role) {
    case "stress": {
      const peer = new StressPeer(job.layout, job.self, job.perDest);
      while (!peer.done()) {
        if (!peer.step()) {
          peer.report.parks++;
          peer.bus.park(20);
        }
      }
      self.postMessage(peer.report);
      break;
    }
    case "ping":
      self.postMessage(
        pingPong(job.layout, job.self, job.peer, job.starts, job.wakeups, job.maxRounds),
      );
      break;
    case "publisher":
      self.postMessage(publisher(job.layout, job.self, job.channel, job.count));
      break;
    case "subscriber":
      self.postMessage(subscriber(job.layout, job.self, job.channel));
      break;
  }
};
