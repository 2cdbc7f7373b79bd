using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Keys;
using ModelRouting.Registry;
using ModelRouting.Routing;

namespace ModelRouting.Proxy;

/// <summary>Marks the health endpoints, which answer on the public and the management listener alike.</summary>
internal sealed class HealthEndpointMetadata
{
    public static HealthEndpointMetadata Instance { get; } = new();
}

/// <summary>
/// The gateway's own client endpoints (SPEC §8, §10): <c>GET /v1/models</c>, <c>GET /v1/models/{id}</c>,
/// <c>/healthz</c> and <c>/readyz</c>, mapped as ordinary ASP.NET Core endpoints (they exist whatever the
/// proxy configuration holds), and the OpenAI-shaped 404 for paths nothing serves.
/// </summary>
internal static class GatewayEndpoints
{
    private const string ModelsPrefix = "/v1/models/";

    private static readonly JsonSerializerOptions s_json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Task ListModels(HttpContext context, ModelRegistrySource source)
    {
        var state = source.Current;
        if (!TryAuthenticate(context, state, source, out var key, out var refusal))
        {
            return refusal.WriteAsync(context);
        }

        // With a key, only the models it may use (SPEC §14).
        var models = key is null
            ? state.Router.ModelsList()
            : [.. state.Router.Registry.AvailableEndpoints.Where(key.Grant.Allows).Select(state.Router.ToListEntry)];
        return WriteJsonAsync(context, StatusCodes.Status200OK, new ModelsListResponse(models));
    }

    public static Task GetModel(HttpContext context, ModelRegistrySource source)
    {
        // The raw path, so an id with an escaped '/' (org%2Fmodel) reads the same as one without.
        var path = context.Request.Path.Value ?? "";
        var id = Uri.UnescapeDataString(path.Length > ModelsPrefix.Length ? path[ModelsPrefix.Length..] : "");
        var state = source.Current;
        if (!TryAuthenticate(context, state, source, out var key, out var refusal))
        {
            return refusal.WriteAsync(context);
        }

        var endpoint = state.Router.Registry.Resolve(id);
        if (endpoint is null || (key is not null && !key.Grant.Allows(endpoint)))
        {
            return OpenAIError.ModelNotFound(id).WriteAsync(context);
        }

        if (!endpoint.Status.IsAvailable())
        {
            var notReady = new RoutingError(RoutingErrorKind.ModelNotReady, endpoint.Id.Value, Status: endpoint.Status.ToWireName());
            return OpenAIError.FromRouting(notReady, 0, 0, state.RetryAfterSeconds).WriteAsync(context);
        }

        return WriteJsonAsync(context, StatusCodes.Status200OK, state.Router.ToListEntry(endpoint));
    }

    public static Task Health(HttpContext context) =>
        WriteJsonAsync(context, StatusCodes.Status200OK, new HealthResponse("ok", null));

    public static Task Ready(HttpContext context, ModelRegistrySource source)
    {
        var ready = source.Current.Router.Registry.AvailableEndpoints.Any();
        return WriteJsonAsync(context, ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
            new HealthResponse(ready ? "ready" : "not_ready", ready ? null : "no endpoint is Ready"));
    }

    public static Task UnknownPath(HttpContext context) =>
        OpenAIError.UnknownPath(context.Request.Method, context.Request.Path.Value).WriteAsync(context);

    // With client keys configured, the models endpoints need one too (SPEC §14).
    private static bool TryAuthenticate(HttpContext context, RoutingState state, ModelRegistrySource source, out ClientKey? key, out OpenAIError refusal)
    {
        refusal = default;
        key = null;
        if (!state.Keys.IsEnabled)
        {
            return true;
        }

        key = state.Keys.Authenticate(context.Request, source.Time, out var failure);
        if (key is null)
        {
            refusal = OpenAIError.Unauthorized(failure!);
            return false;
        }

        return true;
    }

    private static Task WriteJsonAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            context.Response.ContentType = "application/json";
            return Task.CompletedTask;
        }

        return context.Response.WriteAsJsonAsync(value, s_json, context.RequestAborted);
    }

    private sealed record ModelsListResponse([property: JsonPropertyName("data")] IReadOnlyList<ModelListEntry> Data)
    {
        [JsonPropertyName("object")]
        [JsonPropertyOrder(-1)]
#pragma warning disable CA1822 // an instance member so System.Text.Json serializes it
        public string ObjectType => "list";
#pragma warning restore CA1822
    }

    private sealed record HealthResponse(
        [property: JsonPropertyName("status")] string Status,
        [property: JsonPropertyName("reason")] string? Reason);
}
