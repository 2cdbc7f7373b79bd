using System.Text;
using Microsoft.Extensions.Configuration;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.Configuration.ConfigTestData;

namespace ModelRouting.Tests.Configuration;

/// <summary>The ModelRouting section binds from ordinary ASP.NET Core configuration sources (SPEC §3).</summary>
public class ModelRoutingOptionsBindingTests
{
    private const string Json = """
        {
          "ModelRouting": {
            "Endpoints": [
              {
                "Id": "bonsai-8b",
                "BaseModel": "qwen3-8b",
                "Adapter": null,
                "Adapters": null,
                "Cluster": "qwen-pool",
                "UpstreamModel": null,
                "MaxContextLength": 32768,
                "IsDefault": true,
                "Status": "Ready",
                "DisplayName": null,
                "Description": "",
                "Aliases": [ "gpt-4o-mini" ]
              },
              { "Id": "bonsai-8b:sql", "BaseModel": "qwen3-8b", "Adapter": "sql", "Cluster": "qwen-pool" },
              {
                "Id": "bonsai-8b:mix",
                "BaseModel": "qwen3-8b",
                "Cluster": "qwen-pool",
                "Adapters": [ { "Name": "sql", "Weight": 0.6 }, { "Name": "chat", "Weight": 0.2 } ]
              },
              { "Id": "org/llama:8b", "Cluster": "llama-pool", "Status": "loading", "MaxContextLength": 131072 }
            ],
            "MaxRequestBodyBytes": 1048576
          }
        }
        """;

    private static ModelRoutingOptions Bind(IConfiguration configuration)
    {
        var options = configuration.GetSection("ModelRouting").Get<ModelRoutingOptions>();
        Assert.NotNull(options);
        return options;
    }

    private static IConfigurationBuilder JsonSource() =>
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(Json)));

    [Fact]
    public void Bind_InMemoryCollection_IdsWithColonsInTheArray_BuildsTheRegistry()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ModelRouting:Endpoints:0:Id"] = "bonsai-8b",
                ["ModelRouting:Endpoints:0:BaseModel"] = "qwen3-8b",
                ["ModelRouting:Endpoints:0:Cluster"] = "qwen-pool",
                ["ModelRouting:Endpoints:0:IsDefault"] = "true",
                ["ModelRouting:Endpoints:0:MaxContextLength"] = "32768",
                ["ModelRouting:Endpoints:0:Aliases:0"] = "gpt-4o-mini",
                ["ModelRouting:Endpoints:0:Aliases:1"] = "org/small:latest",
                ["ModelRouting:Endpoints:1:Id"] = "bonsai-8b:sql",
                ["ModelRouting:Endpoints:1:BaseModel"] = "qwen3-8b",
                ["ModelRouting:Endpoints:1:Adapter"] = "sql",
                ["ModelRouting:Endpoints:1:Cluster"] = "qwen-pool",
                ["ModelRouting:Endpoints:2:Id"] = "bonsai-8b:mix:v2",
                ["ModelRouting:Endpoints:2:BaseModel"] = "qwen3-8b",
                ["ModelRouting:Endpoints:2:Cluster"] = "qwen-pool",
                ["ModelRouting:Endpoints:2:Adapters:0:Name"] = "sql",
                ["ModelRouting:Endpoints:2:Adapters:0:Weight"] = "0.75",
                ["ModelRouting:Endpoints:2:Adapters:1:Name"] = "chat",
                ["ModelRouting:Endpoints:2:Adapters:1:Weight"] = "0.25",
            })
            .Build();

        var options = Bind(configuration);
        var registry = MustBuild(options, new ManualTimeProvider());

        Assert.Equal(["bonsai-8b", "bonsai-8b:sql", "bonsai-8b:mix:v2"], registry.AllEndpoints.Select(e => e.Id.Value));
        Assert.Equal("bonsai-8b", registry.DefaultId);
        Assert.Equal(32768, registry.Resolve("bonsai-8b")!.MaxContextLength);
        Assert.Equal("bonsai-8b", registry.Resolve("org/small:latest")?.Id.Value);
        Assert.Equal("sql", registry.Resolve("bonsai-8b:sql")!.Adapter);
        Assert.Equal("mix:v2", registry.Resolve("bonsai-8b:mix:v2")!.Id.AdapterName);
        Assert.Equal([0.75, 0.25], registry.Resolve("bonsai-8b:mix:v2")!.Adapters!.Adapters.Select(a => a.Weight));
    }

    [Fact]
    public void Bind_JsonInTheSpecShape_BuildsTheRegistry()
    {
        var options = Bind(JsonSource().Build());
        var registry = MustBuild(options, new ManualTimeProvider());

        Assert.Equal(1048576, options.MaxRequestBodyBytes);
        Assert.Equal(4, registry.Count);
        var bonsai = registry.Resolve("gpt-4o-mini")!;
        Assert.Equal("bonsai-8b", bonsai.Id.Value);
        Assert.Null(bonsai.Adapter);
        Assert.Null(bonsai.Adapters);
        Assert.Equal("bonsai-8b", bonsai.DisplayName);
        Assert.Equal("qwen3-8b", bonsai.UpstreamModel);
        var mix = registry.Resolve("bonsai-8b:mix")!.Adapters!;
        Assert.Equal(0.75, mix.Adapters[0].Weight, 1e-12);
        Assert.Equal(0.25, mix.Adapters[1].Weight, 1e-12);
        var llama = registry.Resolve("org/llama:8b")!;
        Assert.Equal("org/llama:8b", llama.BaseModel);
        Assert.Equal(EndpointStatus.Loading, llama.Status);
        Assert.Equal(131072, llama.MaxContextLength);
    }

    [Fact]
    public void Bind_EnvironmentStyleOverrideKey_DisablesTheEndpoint()
    {
        var configuration = JsonSource()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ModelRouting:Endpoints:0:Status"] = "Disabled" })
            .Build();

        var registry = MustBuild(Bind(configuration), new ManualTimeProvider());
        var router = new ModelRouter(registry);

        Assert.Equal(EndpointStatus.Disabled, registry.Resolve("bonsai-8b")!.Status);
        Assert.Equal("bonsai-8b", registry.Resolve("gpt-4o-mini")!.Id.Value);
        Assert.Equal("disabled", router.Route("gpt-4o-mini").Error?.Status);
        Assert.Equal("disabled", router.Route(null).Error?.Status);
        Assert.DoesNotContain("bonsai-8b", router.ModelsList().Select(e => e.Id));
        Assert.Equal(4, registry.Count);
    }

    [Fact]
    public void Bind_RealEnvironmentVariableWithDoubleUnderscores_OverridesTheJson()
    {
        var prefix = $"MRTEST{Guid.NewGuid():N}_";
        var statusKey = prefix + "ModelRouting__Endpoints__0__Status";
        var contextKey = prefix + "ModelRouting__Endpoints__1__MaxContextLength";
        Environment.SetEnvironmentVariable(statusKey, "Disabled");
        Environment.SetEnvironmentVariable(contextKey, "16384");
        try
        {
            var configuration = JsonSource().AddEnvironmentVariables(prefix).Build();

            var registry = MustBuild(Bind(configuration), new ManualTimeProvider());

            Assert.Equal(EndpointStatus.Disabled, registry.Resolve("bonsai-8b")!.Status);
            Assert.Equal(16384, registry.Resolve("bonsai-8b:sql")!.MaxContextLength);
        }
        finally
        {
            Environment.SetEnvironmentVariable(statusKey, null);
            Environment.SetEnvironmentVariable(contextKey, null);
        }
    }

    [Fact]
    public void Bind_OverrideWithInvalidValue_IsReportedNamingTheEntry()
    {
        var configuration = JsonSource()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ModelRouting:Endpoints:1:Status"] = "asleep",
                ["ModelRouting:Endpoints:3:Cluster"] = "missing-pool",
            })
            .Build();

        var (registry, errors) = ModelRegistryFactory.Build(Bind(configuration), Clusters, null, new ManualTimeProvider());

        Assert.Null(registry);
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[1] ('bonsai-8b:sql'): Status 'asleep'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[3] ('org/llama:8b'): Cluster 'missing-pool'", StringComparison.Ordinal));
    }

    [Fact]
    public void Bind_Defaults_WhenSectionIsMissing()
    {
        var options = new ConfigurationBuilder().Build().GetSection("ModelRouting").Get<ModelRoutingOptions>() ?? new ModelRoutingOptions();

        Assert.Empty(options.Endpoints);
        Assert.Equal(ModelRoutingOptions.DefaultMaxRequestBodyBytes, options.MaxRequestBodyBytes);
        Assert.Equal(10, options.RetryAfterSeconds);
        Assert.Equal("Heuristic", options.TokenEstimation.Mode);
    }
}
