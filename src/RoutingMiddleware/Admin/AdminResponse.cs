using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using ModelRouting.Configuration;
using ModelRouting.Registry;

namespace ModelRouting.Admin;

/// <summary>Writes admin API responses: snake_case JSON of the records below.</summary>
internal static class AdminResponse
{
    private static readonly JsonSerializerOptions s_output = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes <paramref name="value"/> as JSON with <paramref name="status"/>.</summary>
    public static Task WriteAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(value, s_output, context.RequestAborted);
    }

    /// <summary>The <c>GET /admin/endpoints</c> answer: every endpoint, the default (and where it comes from) and the aliases.</summary>
    public static EndpointList List(ModelRegistrySource source)
    {
        var administered = source.Administered;
        var configured = source.Configured.DefaultId;
        var runtime = source.Overlay.Default is { } d && d.AppliesOver(configured);
        return new EndpointList(
            [.. administered.AllEndpoints.Select(e => Describe(source, e, administered))],
            administered.DefaultId,
            runtime ? "runtime" : "configuration",
            configured,
            administered.Aliases.ToDictionary());
    }

    /// <summary>Describes one endpoint: its administered definition and its effective status.</summary>
    public static AdminEndpoint Describe(ModelRegistrySource source, ModelEndpoint administered, ModelRegistry registry)
    {
        var id = administered.Id.Value;
        var effective = source.Current.Router.Registry.TryGet(id, out var e) ? e : administered;
        var runtime = source.Overlay.FindEndpoint(id);
        return new AdminEndpoint(
            id,
            "model_endpoint",
            runtime is null ? "configuration" : "runtime",
            effective.Status.ToWireName(),
            administered.Status.ToWireName(),
            effective.StatusReason,
            administered.Cluster,
            administered.BaseModel,
            administered.Adapter,
            administered.UpstreamModel,
            effective.MaxContextLength,
            registry.DefaultId == id,
            registry.AliasesOf(id),
            administered.DisplayName,
            administered.Description,
            administered.RegisteredAt.ToUnixTimeSeconds(),
            runtime?.SourcePath);
    }
}

/// <summary>
/// <c>GET /admin/endpoints</c>: the endpoints, the default in force, whether it comes from configuration or a
/// runtime change (<c>default_source</c>), configuration's own default, and the aliases.
/// </summary>
internal sealed record EndpointList(IReadOnlyList<AdminEndpoint> Data, string? Default, string DefaultSource, string? ConfiguredDefault, Dictionary<string, string> Aliases)
{
    [JsonPropertyOrder(-1)]
#pragma warning disable CA1822 // an instance member so System.Text.Json serializes it
    public string Object => "list";
#pragma warning restore CA1822
}

/// <summary>One endpoint as the admin API shows it.</summary>
internal sealed record AdminEndpoint(
    string Id,
    string Object,
    string Source,
    string Status,
    string AdministeredStatus,
    string? StatusReason,
    string Cluster,
    string BaseModel,
    string? Adapter,
    string UpstreamModel,
    int MaxContextLength,
    bool IsDefault,
    IReadOnlyList<string> Aliases,
    string DisplayName,
    string Description,
    long Created,
    string? SourcePath);

/// <summary>A removed endpoint or alias.</summary>
internal sealed record Deleted(string Id, string Object, [property: JsonPropertyName("deleted")] bool IsDeleted);

/// <summary>An alias and its target.</summary>
internal sealed record AliasEntry(string Alias, string Target);

/// <summary>The default endpoint set at runtime (null: none).</summary>
internal sealed record DefaultEntry(string? Id);
