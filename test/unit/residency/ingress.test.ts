import { describe, expect, it } from "vitest";
import { ingressRegion, regionHosts } from "../../../src/residency/ingress";

describe("region of ingress", () => {
  const hosts = "eu.gateway.example.com=eu, gateway.example.com=global\nEU2.Example.COM=eu";

  it("maps configured hostnames to their region, ignoring case, port and path", () => {
    expect(ingressRegion("https://eu.gateway.example.com/api/v1/models", hosts)).toBe("eu");
    expect(ingressRegion("https://EU.Gateway.Example.com:8443/v1/chat/completions", hosts)).toBe("eu");
    expect(ingressRegion("https://eu2.example.com/", hosts)).toBe("eu");
    expect(ingressRegion("https://gateway.example.com/", hosts)).toBe("global");
  });

  it("treats every hostname not listed as global, including look-alikes", () => {
    expect(ingressRegion("https://other.example.com/", hosts)).toBe("global");
    expect(ingressRegion("https://eu.gateway.example.com.attacker.test/", hosts)).toBe("global");
    expect(ingressRegion("https://x.eu.gateway.example.com/", hosts)).toBe("global");
    expect(ingressRegion("http://127.0.0.1:8787/", undefined)).toBe("global");
    expect(ingressRegion("http://localhost:8787/", "")).toBe("global");
  });

  it("rejects a malformed configuration whole, so no hostname is EU by mistake", () => {
    for (const bad of ["eu.gateway.example.com", "eu.gateway.example.com=us", "https://eu.example.com=eu", "eu.example.com:443=eu", "a=eu=eu"]) {
      const parsed = regionHosts(bad);
      expect(parsed.problem, bad).not.toBeNull();
      expect(parsed.hosts.size).toBe(0);
      expect(ingressRegion("https://eu.gateway.example.com/", bad)).toBe("global");
    }
    expect(regionHosts("").problem).toBeNull();
  });
});
