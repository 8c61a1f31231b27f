/* A small SAMP Web Profile client (SAMP 1.3, section 5): XML-RPC over HTTP to the hub.
 *
 * The hub (TOPCAT, Aladin, JSAMP, pyvo) listens on http://localhost:21012/ and asks
 * its user to accept a web page before registering it. Outgoing messages are
 * notifications to every subscribed client; incoming ones are pulled
 * (samp.webhub.pullCallbacks) every `pollMs` and handed to the handler of their mtype.
 * Every SAMP value is a string, a list or a map: numbers must be sent as strings.
 */
"use strict";

const AlvoSamp = (() => {
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

  function encode(value) {
    if (Array.isArray(value)) {
      return `<array><data>${value.map((v) => `<value>${encode(v)}</value>`).join("")}</data></array>`;
    }
    if (value !== null && typeof value === "object") {
      const members = Object.entries(value).map(
        ([k, v]) => `<member><name>${esc(k)}</name><value>${encode(v)}</value></member>`);
      return `<struct>${members.join("")}</struct>`;
    }
    return `<string>${esc(value ?? "")}</string>`;
  }

  function request(method, params) {
    const body = params.map((p) => `<param><value>${encode(p)}</value></param>`).join("");
    return `<?xml version="1.0"?><methodCall><methodName>${esc(method)}</methodName>` +
      `<params>${body}</params></methodCall>`;
  }

  function decode(node) {
    // node: a <value> element
    const child = Array.from(node.children)[0];
    if (!child) return node.textContent;
    switch (child.tagName) {
      case "array":
        return Array.from(child.querySelector("data").children).map(decode);
      case "struct": {
        const out = {};
        for (const member of child.children) {
          out[member.querySelector("name").textContent] = decode(member.querySelector("value"));
        }
        return out;
      }
      case "int": case "i4": case "double":
        return Number(child.textContent);
      case "boolean":
        return child.textContent.trim() === "1";
      case "nil":
        return null;
      default:
        return child.textContent;
    }
  }

  class SampError extends Error {}

  class Client {
    constructor(url = "http://localhost:21012/", pollMs = 500) {
      this.url = url;
      this.pollMs = pollMs;
      this.key = null;
      this.handlers = {};
      this.onchange = () => {};
    }

    async call(method, params) {
      const response = await fetch(this.url, {
        method: "POST", headers: { "Content-Type": "text/xml" }, body: request(method, params),
      });
      if (!response.ok) throw new SampError(`SAMP hub answered HTTP ${response.status}`);
      const doc = new DOMParser().parseFromString(await response.text(), "text/xml");
      const fault = doc.querySelector("methodResponse > fault > value");
      if (fault) {
        const detail = decode(fault);
        throw new SampError(detail.faultString || "SAMP hub refused the call");
      }
      const value = doc.querySelector("methodResponse > params > param > value");
      return value ? decode(value) : null;
    }

    get connected() { return this.key !== null; }

    /** Register (the hub asks its user first), declare metadata and subscriptions. */
    async register(name, metadata, handlers) {
      const info = await this.call("samp.webhub.register", [{ "samp.name": name }]);
      this.key = info["samp.private-key"];
      this.selfId = info["samp.self-id"];
      this.handlers = handlers || {};
      await this.call("samp.webhub.declareMetadata", [this.key, { "samp.name": name, ...metadata }]);
      const subscriptions = {};
      for (const mtype of Object.keys(this.handlers)) subscriptions[mtype] = {};
      await this.call("samp.webhub.declareSubscriptions", [this.key, subscriptions]);
      await this.call("samp.webhub.allowReverseCallbacks", [this.key, "1"]);
      this.onchange();
      this.poll();
    }

    async unregister() {
      const key = this.key;
      this.key = null;
      this.onchange();
      if (key) await this.call("samp.webhub.unregister", [key]).catch(() => {});
    }

    async poll() {
      while (this.key) {
        try {
          const callbacks = await this.call("samp.webhub.pullCallbacks", [this.key, "0"]);
          for (const callback of callbacks || []) await this.dispatch(callback);
        } catch (error) {
          if (error instanceof TypeError) { // hub gone
            this.key = null;
            this.onchange(error);
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, this.pollMs));
      }
    }

    async dispatch(callback) {
      const method = callback["samp.methodName"];
      const params = callback["samp.params"];
      if (method === "receiveNotification") {
        const [sender, message] = params;
        this.handle(sender, message);
      } else if (method === "receiveResponse") {
        const [responder, tag, response] = params;
        const waiting = this.waiting && this.waiting.get(tag);
        if (waiting) waiting(responder, response);
      } else if (method === "receiveCall") {
        const [sender, msgId, message] = params;
        let response = { "samp.status": "samp.ok", "samp.result": {} };
        try {
          this.handle(sender, message);
        } catch (error) {
          response = { "samp.status": "samp.error", "samp.error": { "samp.errortxt": String(error) } };
        }
        await this.call("samp.webhub.reply", [this.key, msgId, response]);
      }
    }

    handle(sender, message) {
      const handler = this.handlers[message["samp.mtype"]];
      if (handler) handler(message["samp.params"] || {}, sender);
    }

    /**
     * Send a message to every client subscribed to its mtype as a call: each one's
     * reply goes to onReply(responder-name, response) as it comes (SAMP responses
     * arrive through pullCallbacks). Resolves to the ids of the clients it went to.
     */
    async callAll(mtype, params, onReply) {
      if (!this.key) throw new SampError("not connected to a SAMP hub");
      this.waiting = this.waiting || new Map();
      const tag = `alvo-${mtype}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
      this.waiting.set(tag, async (responder, response) => {
        let name = responder;
        try {
          const meta = await this.call("samp.webhub.getMetadata", [this.key, responder]);
          name = meta["samp.name"] || responder;
        } catch (error) { /* the responder left: its id will do */ }
        onReply(name, response);
      });
      const sent = await this.call("samp.webhub.callAll",
        [this.key, tag, { "samp.mtype": mtype, "samp.params": params }]);
      return Object.keys(sent || {});
    }

    /** Broadcast a message to every client subscribed to its mtype. */
    async notifyAll(mtype, params) {
      if (!this.key) throw new SampError("not connected to a SAMP hub");
      return this.call("samp.webhub.notifyAll", [this.key, { "samp.mtype": mtype, "samp.params": params }]);
    }
  }

  return { Client, SampError, encode, request };
})();
