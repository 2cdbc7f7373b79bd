using System.Net;
using System.Net.Http.Headers;
using System.Text;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>Issue 6 with the real host process: runtime changes survive a process restart; a corrupt state file stops start-up.</summary>
public sealed partial class HostProcessTests
{
    [Fact]
    public async Task AdminChange_SurvivesAProcessRestart()
    {
        using var dir = new TempDirectory();
        var state = Path.Combine(dir.Path, "state.json");
        var management = AdminTestSupport.ManagementUrl();
        var environment = new Dictionary<string, string>
        {
            ["ModelRouting__Admin__Key"] = AdminTestSupport.Key,
            ["ModelRouting__Admin__StateFile"] = state,
            ["ModelRouting__Admin__Urls"] = management,
        };

        using (var first = HostProcess.Start(["--urls", "http://127.0.0.1:0"], dir.Path, environment))
        {
            var address = await first.WaitForListeningAsync(ExitBound);
            Assert.True(address is not null, "the host did not start: " + first.Output);
            Assert.Contains(state, first.Output);
            using var client = new HttpClient { BaseAddress = new Uri(management) };
            var put = await client.AdminAsync(HttpMethod.Put, "/admin/endpoints/qwen3-8b%3Alegal",
                new System.Text.Json.Nodes.JsonObject { ["BaseModel"] = "Qwen/Qwen3-8B", ["Adapter"] = "legal-lora", ["Cluster"] = "qwen-pool" });
            Assert.Equal(HttpStatusCode.Created, put.Status);
        }

        using var second = HostProcess.Start(["--urls", "http://127.0.0.1:0"], dir.Path, environment);
        var again = await second.WaitForListeningAsync(ExitBound);
        Assert.True(again is not null, "the host did not restart: " + second.Output);
        Assert.NotEqual(new Uri(management).Port, again.Port);
        using var client2 = new HttpClient { BaseAddress = new Uri(management) };
        var get = await client2.AdminAsync(HttpMethod.Get, "/admin/endpoints/qwen3-8b:legal");
        Assert.Equal(HttpStatusCode.OK, get.Status);
        Assert.Equal("runtime", get.Body!["source"]!.GetValue<string>());
        using var publicClient = new HttpClient { BaseAddress = again };
        var models = await publicClient.GetStringAsync("/v1/models");
        Assert.Contains("qwen3-8b:legal", models);
    }

    [Fact]
    public async Task CorruptStateFile_ExitsNonZero_NamingTheFile()
    {
        using var dir = new TempDirectory();
        var state = dir.Write("state.json", "{ this is not json");

        var result = await HostProcess.RunToExitAsync(
            ["--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls="], dir.Path,
            new Dictionary<string, string> { ["ModelRouting__Admin__Key"] = AdminTestSupport.Key, ["ModelRouting__Admin__StateFile"] = state });

        Assert.True(result.Exited, "the host did not exit within 30 s: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("state.json", result.Output);
        Assert.Contains("could not be read", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Output);
    }
}
