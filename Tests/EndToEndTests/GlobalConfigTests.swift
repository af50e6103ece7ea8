import Testing
import InteropSupport
import TestSupport

/// xl.conf (`$XL_CONF` here) as every xl command reads it: Xen's keys accepted, the others
/// warned about, a file that does not parse ending xl with its place.
@Suite struct GlobalConfigTests {
  @Test func keysAreReadAndTheUnknownWarnedAbout() async throws {
    let bed = try XlTestbed()
    defer { bed.stop() }
    let conf = bed.config(
      """
      autoballoon = "off"
      lockfile = "/var/lock/xl"
      vif.default.bridge = "xenbr0"
      run_hotplug_scripts = 0
      defaultbridge = "br1"
      claim_mode = 1
      frobnicate = 2
      """, name: "xl.conf")
    let result = try await bed.xl(["domid", "Domain-0"], environment: ["XL_CONF": conf])
    #expect(result.status == 0)
    #expect(result.stdout == "0\n")
    #expect(
      result.stderr == """
        \(conf):5:1: warning: "defaultbridge" is deprecated; use "vif.default.bridge"
        \(conf):6:1: warning: "claim_mode" needs the Xen hypervisor; ignored
        \(conf):7:1: warning: unknown setting "frobnicate"; ignored

        """, "\(result)")

    let missing = try await bed.xl(["domid", "Domain-0"], environment: ["XL_CONF": bed.directory.appending("none.conf")])
    #expect(missing.status == 0 && missing.stderr == "")

    let bad = bed.config("output_format = \"xml\"\n", name: "bad.conf")
    let refused = try await bed.xl(["domid", "Domain-0"], environment: ["XL_CONF": bad])
    #expect(refused.status == 1)
    #expect(refused.stdout == "")
    #expect(refused.stderr == "xl: \(bad):1:1: output_format: invalid default output format \"xml\" (expected json or sxp)\n")
  }
}
