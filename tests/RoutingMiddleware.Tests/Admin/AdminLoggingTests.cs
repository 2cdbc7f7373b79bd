using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Admin;

/// <summary>SPEC §12: admin log lines carry client-supplied values escaped and truncated, and never a key.</summary>
public sealed class AdminLoggingTests
{
    [Fact]
    public async Task AdminLogs_EscapeAndTruncateClientValues_AndNeverLogAKey()
    {
        using var dir = new TempDirectory();
        await using var backend = await TestBackend.StartAsync("b");
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("base", "pool", isDefault: true)],
            AdminSection(dir.File("state.json")));
        config["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning", ["ModelRouting"] = "Information" } };
        await using var gateway = await TestGateway.StartAsync(config);
        var logs = gateway.CaptureLogs();
        var alias = "evil\nFAKE ENTRY\u202E" + new string('x', 1000);

        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/" + Uri.EscapeDataString(alias), new JsonObject { ["target"] = "base" })).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints/a%0Ab", key: "secret-guess-123")).Status);

        var changed = Assert.Single(logs.Entries, e => e.EventName == "AdminChanged");
        Assert.Contains(@"evil\u000AFAKE ENTRY\u202E", changed.Message);
        Assert.True(changed.Message.Length < 2 * 256 + 40, changed.Message);
        var unauthorized = Assert.Single(logs.Entries, e => e.EventName == "AdminUnauthorized");
        Assert.Contains(@"a\u000Ab", unauthorized.Message);
        Assert.All(logs.Entries.Where(e => e.EventName?.StartsWith("Admin", StringComparison.Ordinal) == true), e =>
        {
            Assert.DoesNotContain('\n', e.Message);
            Assert.DoesNotContain(Key, e.Message);
            Assert.DoesNotContain("secret-guess-123", e.Message);
        });
    }
}
