using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using ModelRouting.Adapters;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Failover;
using ModelRouting.Inspection;
using ModelRouting.Keys;
using ModelRouting.Logging;
using ModelRouting.Observability;
using ModelRouting.Quotas;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.Usage;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Proxy;

/// <summary>
/// The proxy-pipeline step: reads the OpenAI request body once, routes on its model and token estimate,
/// rewrites the model value by splicing bytes and reassigns the request to the endpoint's cluster through
/// YARP; answers 404 <c>unknown_path</c> for what is not on the client surface (SPEC §12).
/// </summary>
internal sealed partial class ModelRoutingMiddleware(
    RequestDelegate next,
    ModelRegistrySource source,
    IProxyStateLookup proxyState,
    PromptTokenEstimator estimator,
    DestinationCooldowns cooldowns,
    IEnumerable<IGatewayRequestListener> listeners,
    IQuotaStore quotas,
    UsageLedger usage,
    ILogger<ModelRoutingMiddleware> logger)
{
    private readonly IGatewayRequestListener[] _listeners = [.. listeners];

    public const string EndpointHeader = "x-gateway-endpoint";
    public const string EstimatedTokensHeader = "x-gateway-estimated-tokens";
    public const string FallbackHeader = "x-gateway-fallback";
    public const string AttemptsHeader = "x-gateway-attempts";

    private const int StackModelChars = 256;
    private static readonly ConcurrentDictionary<string, byte[]> s_encodedModels = new(StringComparer.Ordinal);
    private static readonly ConditionalWeakTable<ModelEndpoint, byte[]> s_mergedAdapters = [];
    private static readonly UTF8Encoding s_strictUtf8 = new(false, true);

    // The attempt counts as header values, so the header costs no allocation per request (MaxAttempts is 1-10).
    private static readonly string[] s_attempts = [.. Enumerable.Range(0, 11).Select(n => n.ToString(CultureInfo.InvariantCulture))];

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var state = source.Current;
        var path = request.Path.Value;
        if (HttpMethods.IsPost(request.Method) && IsInspected(state, path))
        {
            return RouteAsync(context, state, passThrough: false);
        }

        // The client surface is an allowlist (SPEC §12): a pass-through path, or nothing reaches a backend.
        if (state.Surface.IsPassThrough(path) && !ModelRoutingProxyConfigProvider.IsGenerated(context.GetReverseProxyFeature().Route.Config.RouteId))
        {
            return HttpMethods.IsPost(request.Method) && HasRoutableBody(request) ? RouteAsync(context, state, passThrough: true)
                : state.Keys.IsEnabled ? PassThroughWithKeyAsync(context, state)
                : next(context);
        }

        Log.UnknownPath(logger, LogValue.Sanitize(request.Method), LogValue.Sanitize(path));
        return OpenAIError.UnknownPath(request.Method, path).WriteAsync(context);
    }

    // A pass-through request that names no model (a GET, a body that is not JSON): any valid key may send it.
    private Task PassThroughWithKeyAsync(HttpContext context, RoutingState state) =>
        Authenticate(context, state, out _) is { } refusal ? refusal.WriteAsync(context) : next(context);

    // With client keys configured (SPEC §14): the request's key, or the 401 to answer.
    private OpenAIError? Authenticate(HttpContext context, RoutingState state, out ClientKey? key)
    {
        key = state.Keys.Authenticate(context.Request, source.Time, out var failure);
        if (key is not null)
        {
            // The client's secret has served its purpose: nothing after this step (YARP's header copy, a listener)
            // sees it. The backend transform drops both headers too, for requests that come another way.
            var headers = context.Request.Headers;
            headers.Remove(HeaderNames.Authorization);
            headers.Remove(Backends.BackendHeaderTransforms.ApiKeyHeader);
            return null;
        }

        Log.KeyRefused(logger, LogValue.Sanitize(context.Request.Path.Value), failure!);
        return OpenAIError.Unauthorized(failure!);
    }

    private static bool IsInspected(RoutingState state, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        return state.InspectedPaths.Contains(path.EndsWith('/') ? path.TrimEnd('/') : path);
    }

    // A pass-through POST is routed on its model when its body is JSON or multipart form data.
    private static bool HasRoutableBody(HttpRequest request)
    {
        var type = request.ContentType;
        return type is not null
            && (type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
                || type.Contains("+json", StringComparison.OrdinalIgnoreCase)
                || type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase));
    }

    private async Task RouteAsync(HttpContext context, RoutingState state, bool passThrough)
    {
        var exchange = new GatewayRequest { Operation = GatewayRequest.OperationOf(context.Request.Path.Value) };
        context.Features.Set(exchange);
        var activity = GatewayTracing.Start(exchange); // current while YARP forwards: its activity is a child (SPEC §15)
        try
        {
            await RouteCoreAsync(context, state, passThrough, exchange);
        }
        finally
        {
            GatewayTracing.Stop(activity, context, exchange);
            foreach (var listener in _listeners)
            {
                listener.OnRequestCompleted(context, exchange);
            }
        }
    }

    private async Task RouteCoreAsync(HttpContext context, RoutingState state, bool passThrough, GatewayRequest exchange)
    {
        ClientKey? key = null;
        if (state.Keys.IsEnabled)
        {
            if (Authenticate(context, state, out key) is { } refusal)
            {
                await refusal.WriteAsync(context);
                return;
            }

            exchange.KeyId = key!.Id;
            exchange.Grant = key.Grant;
        }

        var read = await RequestBodyReader.ReadAsync(context, state.MaxRequestBodyBytes);
        switch (read.Failure)
        {
            case BodyReadFailure.TooLarge:
                await OpenAIError.RequestTooLarge(state.MaxRequestBodyBytes).WriteAsync(context);
                return;
            case BodyReadFailure.UnsupportedEncoding:
                await (OpenAIError.InvalidRequest(read.Detail!) with { StatusCode = StatusCodes.Status415UnsupportedMediaType }).WriteAsync(context);
                return;
            case BodyReadFailure.Malformed:
                await OpenAIError.InvalidRequest("The request body could not be read: " + read.Detail).WriteAsync(context);
                return;
        }

        using var body = new PooledBody(read.Buffer!, read.Length);
        var boundary = passThrough ? MultipartModelField.Boundary(context.Request.ContentType) : null;
        Decision decision;
        for (var attempt = 0; ; attempt++)
        {
            decision = boundary is null ? Decide(body.Span, state, passThrough, exchange) : DecideMultipart(body.Span, boundary, state, exchange);
            if (decision.Pending is { } pending)
            {
                // Backend mode near a limit (SPEC §18): the endpoint's engine counts, and the decision is made again on its count.
                var counted = await estimator.CountOnBackendAsync(pending, state.TokenEstimation, context.RequestAborted);
                decision = Decide(body.Span, state, passThrough, exchange, counted);
            }

            if (decision.Error is not null || decision.Endpoint is null)
            {
                break;
            }

            if (proxyState.TryGetCluster(decision.Endpoint.Cluster, out var cluster) && TryReassign(context, cluster))
            {
                break;
            }

            // The registry names a cluster YARP has not applied yet, or no longer has: one configuration edit is
            // being applied in two steps. Wait for the routing state that matches the clusters, then decide again.
            if (attempt == 2 || !await source.WaitForChangeAsync(state, TimeSpan.FromSeconds(2), context.RequestAborted))
            {
                await OpenAIError.UpstreamUnavailable(StatusCodes.Status503ServiceUnavailable,
                    $"The cluster '{decision.Endpoint.Cluster}' that serves model `{decision.Endpoint.Id}` is not available.").WriteAsync(context);
                return;
            }

            state = source.Current;
        }

        if (decision.Error is { } error)
        {
            Log.Refused(logger, error.Code, LogValue.Sanitize(error.Message));
            await error.WriteAsync(context);
            return;
        }

        var request = context.Request;
        request.Headers.Remove(HeaderNames.TransferEncoding);
        if (decision.Endpoint is null)
        {
            // A pass-through request that names no model: forwarded as received, on its route's cluster.
            SetBody(request, new ForwardedBodyStream(body, 0, 0, []));
            await next(context);
            return;
        }

        exchange.Endpoint = decision.Endpoint;
        exchange.EstimatedPromptTokens = decision.PromptTokens;
        exchange.Streaming = decision.Streaming;
        exchange.StripUsageChunk = decision.UsageEdit.Insert is not null;

        // Limits of the key and of the endpoint (SPEC §14): the estimate plus the output budget is reserved now
        // and corrected to the backend's usage when the response has ended.
        var endpointScope = EndpointScope(state, decision.Endpoint);
        if (key?.Scope is not null || endpointScope is not null)
        {
            Reserve(state, decision, exchange);
            var admission = await quotas.AdmitAsync(new QuotaRequest(key?.Scope, endpointScope, exchange.ReservedTokens), context.RequestAborted);
            exchange.RateLimits = admission.Snapshot;
            if (!admission.Admitted)
            {
                Log.RateLimited(logger, key?.Id ?? "-", decision.Endpoint.Id.Value, admission.RefusedBy!);
                QuotaHeaders.Write(context.Response.Headers, admission.Snapshot);
                await OpenAIError.RateLimited(admission.RefusedBy!, admission.Reason!, admission.RetryAfter).WriteAsync(context);
                return;
            }

            exchange.Lease = admission.Lease;
        }

        try
        {
            await ForwardAsync(context, state, body, decision, exchange);
        }
        finally
        {
            var (prompt, completion, fromUsage) = Used(exchange, context);
            if (exchange.Lease is { } lease)
            {
                await quotas.CompleteAsync(lease, prompt + completion);
            }

            if (exchange.FallbackLease is { } fallbackLease)
            {
                await quotas.CompleteAsync(fallbackLease, prompt + completion);
            }

            usage.Record(exchange.KeyId, exchange.Endpoint!.Id.Value, prompt, completion, fromUsage);
        }
    }

    private static QuotaScope? EndpointScope(RoutingState state, ModelEndpoint endpoint) =>
        state.EndpointScopes.Count > 0 && state.EndpointScopes.TryGetValue(endpoint.Id.Value, out var scope) ? scope : null;

    // What a request reserves of tokens-per-minute limits: its prompt estimate and its output budget.
    private static long Reserve(RoutingState state, Decision decision, GatewayRequest exchange)
    {
        var output = exchange.Operation == GenAIOperation.Embeddings ? 0 : decision.OutputTokens > 0 ? decision.OutputTokens : state.DefaultOutputTokens;
        return exchange.ReservedTokens = decision.PromptTokens + output;
    }

    /// <summary>
    /// What a request used: the backend's <c>usage</c>; without it, a response that failed or never started used
    /// nothing, an aborted or usage-less stream used its prompt and one token per event, and any other response
    /// keeps the reservation (SPEC §14).
    /// </summary>
    private static (long Prompt, long Completion, bool FromUsage) Used(GatewayRequest exchange, HttpContext context)
    {
        if (exchange.HasUsage)
        {
            return (exchange.PromptTokens, exchange.CompletionTokens, true);
        }

        if (exchange.FirstByte == 0 || context.Response.StatusCode >= 400)
        {
            return (0, 0, false);
        }

        return exchange.Streaming
            ? (exchange.EstimatedPromptTokens, exchange.StreamedEvents, false)
            : (exchange.EstimatedPromptTokens, Math.Max(0, exchange.ReservedTokens - exchange.EstimatedPromptTokens), false);
    }

    /// <summary>
    /// Forwards a routed request through the rest of YARP's pipeline (SPEC §13): a failed attempt, before any
    /// byte of a response reached the client, is retried on another destination of the cluster, then on the
    /// endpoint's fallbacks, each attempt with the body spliced for its endpoint; failed destinations cool down.
    /// </summary>
    private async Task ForwardAsync(HttpContext context, RoutingState state, PooledBody body, Decision decision, GatewayRequest exchange)
    {
        var clientBody = context.Response.Body;
        var tap = new ResponseUsageStream(clientBody, context.Response, exchange);
        context.Response.Body = tap;
        try
        {
            await ForwardAttemptsAsync(context, state, body, decision, exchange, tap);
        }
        finally
        {
            context.Response.Body = clientBody;
            tap.Release();
        }
    }

    private async Task ForwardAttemptsAsync(HttpContext context, RoutingState state, PooledBody body, Decision decision, GatewayRequest exchange, ResponseUsageStream tap)
    {
        var endpoint = decision.Endpoint!;
        var asked = endpoint;
        var splice = (decision.CutStart, decision.CutEnd, decision.Insert);
        var fallback = decision.IsFallback ? "context" : null;
        var nextFallback = 0;
        var failover = state.MaxAttempts > 1 ? new FailoverAttempt(state.RetryOn) : null;
        if (failover is not null)
        {
            context.Features.Set(failover);
        }

        List<DestinationState>? tried = null;
        QuotaDecision? refusedFallback = null;
        ModelEndpoint? refusedEndpoint = null;
        var attempts = 0;
        var shortestCooldown = TimeSpan.MaxValue;
        ForwarderError lastError = ForwarderError.None;
        Log.Routed(logger, endpoint.Id.Value, endpoint.Cluster, decision.PromptTokens);
        Balancing.ModelAwareRequest.Attach(context, endpoint, decision.PromptTokens, body.Span);
        while (true)
        {
            // An adapter endpoint goes only to destinations that have its adapter loaded.
            var feature = context.GetReverseProxyFeature();
            var placed = AdapterPlacement.TryNarrow(context, endpoint, source.Conditions);
            var candidates = placed ? Candidates(feature.AvailableDestinations, feature.Cluster.Config.ClusterId, tried, ref shortestCooldown) : [];
            if (candidates.Count == 0)
            {
                // The request leaves this endpoint: what it holds of the endpoint's limits goes back now (SPEC §14).
                await ReleaseEndpointAsync(exchange);
                var switched = false;
                while (attempts < state.MaxAttempts && NextFallback(state, decision, asked, exchange.Grant, ref nextFallback) is (var candidate, var fallbackCluster))
                {
                    // A fallback whose every destination is cooling down is skipped before its limits count the request.
                    if (Candidates(fallbackCluster.DestinationsState.AvailableDestinations, fallbackCluster.ClusterId, tried, ref shortestCooldown).Count == 0)
                    {
                        continue;
                    }

                    // A fallback with limits of its own admits the request against them; one over its limit is skipped.
                    RateLimitSnapshot? fallbackLimits = null;
                    if (EndpointScope(state, candidate) is { } fallbackScope)
                    {
                        var admission = await quotas.AdmitAsync(new QuotaRequest(null, fallbackScope, exchange.ReservedTokens > 0 ? exchange.ReservedTokens : Reserve(state, decision, exchange)), context.RequestAborted);
                        if (!admission.Admitted)
                        {
                            Log.RateLimited(logger, exchange.KeyId ?? "-", candidate.Id.Value, admission.RefusedBy!);
                            (refusedFallback, refusedEndpoint) = (admission, candidate);
                            continue;
                        }

                        exchange.FallbackLease = admission.Lease;
                        fallbackLimits = admission.Snapshot;
                    }

                    if (!TryReassign(context, fallbackCluster))
                    {
                        await ReleaseEndpointAsync(exchange);
                        continue;
                    }

                    // The headers show, of each kind, the tighter of the admission's and the fallback that serves.
                    if (fallbackLimits is { } fallbackSnapshot)
                    {
                        exchange.RateLimits = exchange.RateLimits is { } admitted ? RateLimitSnapshot.Tightest(admitted, fallbackSnapshot) : fallbackSnapshot;
                    }

                    (endpoint, splice) = (candidate, Splice(body.Span, decision.Site, candidate));
                    fallback = "failover";
                    refusedFallback = null; // if this one fails too, its failure is the answer
                    switched = true;
                    break;
                }

                if (switched)
                {
                    continue;
                }

                if (refusedFallback is { } refused)
                {
                    // The endpoint failed and every fallback that could serve is over its limits: the fallback's 429.
                    context.Response.Clear();
                    context.Features.Set<IForwarderErrorFeature>(null);
                    context.Response.Headers[EndpointHeader] = refusedEndpoint!.Id.Value;
                    context.Response.Headers[AttemptsHeader] = AttemptsText(attempts);
                    QuotaHeaders.Write(context.Response.Headers, refused.Snapshot);
                    await OpenAIError.RateLimited(refused.RefusedBy!, refused.Reason!, refused.RetryAfter).WriteAsync(context);
                    return;
                }

                if (!placed && attempts == 0)
                {
                    await AdapterPlacement.NotPlaced(endpoint, state.RetryAfterSeconds).WriteAsync(context);
                    return;
                }

                await WriteExhaustedAsync(context, endpoint, attempts, lastError, shortestCooldown, allCooling: true);
                return;
            }

            feature.AvailableDestinations = candidates;
            attempts++;
            exchange.Attempts = attempts;
            exchange.Endpoint = endpoint;
            exchange.Fallback = fallback;
            if (failover is not null)
            {
                failover.Reset();
                failover.MayRetry = attempts < state.MaxAttempts && (candidates.Count > 1 || HasFallback(state, asked, nextFallback, decision.Required, exchange.Grant));
            }

            SetBody(context.Request, new ForwardedBodyStream(body, new BodyEdit(splice.CutStart, splice.CutEnd, splice.Insert), decision.UsageEdit));
            var headers = context.Response.Headers;
            headers[EndpointHeader] = endpoint.Id.Value;
            headers[EstimatedTokensHeader] = decision.PromptTokens.ToString(CultureInfo.InvariantCulture);
            headers[AttemptsHeader] = AttemptsText(attempts);
            if (exchange.RateLimits is { } limits)
            {
                QuotaHeaders.Write(headers, limits);
            }

            if (fallback is not null)
            {
                headers[FallbackHeader] = fallback;
            }

            await next(context);

            var error = context.GetForwarderErrorFeature()?.Error ?? ForwarderError.None;
            var held = failover?.RetryableStatus is not null;
            if (!held && error == ForwarderError.None && feature.ProxiedDestination is { } served)
            {
                cooldowns.Succeeded(feature.Cluster.Config.ClusterId, served);
            }

            if (context.Response.HasStarted || context.RequestAborted.IsCancellationRequested || (!held && !IsRetryable(error)))
            {
                if (error != ForwarderError.None)
                {
                    await MapForwarderErrorAsync(context, endpoint);
                }

                return;
            }

            // The attempt failed before a response started: cool the destination down and try again.
            var destination = feature.ProxiedDestination;
            if (destination is not null)
            {
                var period = failover?.RetryAfter is { } retryAfter && retryAfter > state.Cooldown ? retryAfter : state.Cooldown;
                cooldowns.CoolDown(feature.Cluster.Config.ClusterId, destination, period);
                (tried ??= []).Add(destination);
                Log.AttemptFailed(logger, endpoint.Id.Value, endpoint.Cluster, destination.DestinationId,
                    held ? $"status {failover!.RetryableStatus}" : error.ToString(), attempts);
            }

            lastError = held ? ForwarderError.None : error;
            if (attempts >= state.MaxAttempts)
            {
                await WriteExhaustedAsync(context, endpoint, attempts, error, shortestCooldown, allCooling: false);
                return;
            }

            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            tap.Reset();
            exchange.ResetResponse();
            if (proxyState.TryGetCluster(feature.Cluster.Config.ClusterId, out var cluster))
            {
                feature.AvailableDestinations = cluster.DestinationsState.AvailableDestinations;
            }
        }
    }

    // The destinations an attempt may use: YARP's available ones less those tried and those cooling down.
    private IReadOnlyList<DestinationState> Candidates(IReadOnlyList<DestinationState> available, string clusterId, List<DestinationState>? tried, ref TimeSpan shortestCooldown)
    {
        List<DestinationState>? narrowed = null;
        for (var i = 0; i < available.Count; i++)
        {
            var destination = available[i];
            var cooling = cooldowns.Remaining(clusterId, destination);
            var skip = cooling > TimeSpan.Zero || (tried is not null && tried.Contains(destination));
            if (cooling > TimeSpan.Zero && cooling < shortestCooldown)
            {
                shortestCooldown = cooling;
            }

            if (skip && narrowed is null)
            {
                narrowed = new List<DestinationState>(available.Count);
                for (var j = 0; j < i; j++)
                {
                    narrowed.Add(available[j]);
                }
            }
            else if (!skip)
            {
                narrowed?.Add(destination);
            }
        }

        return narrowed ?? available;
    }

    private static bool IsRetryable(ForwarderError error) =>
        error is ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.RequestBodyDestination or ForwarderError.NoAvailableDestinations;

    // The next of the asked endpoint's fallbacks that is Ready, fits the request and whose cluster YARP has.
    private (ModelEndpoint Endpoint, ClusterState Cluster)? NextFallback(RoutingState state, Decision decision, ModelEndpoint asked, ModelGrant? grant, ref int next)
    {
        while (next < asked.Fallbacks.Count)
        {
            var id = asked.Fallbacks[next++];
            if (IsViableFallback(state, id, decision.Required, grant, out var candidate)
                && (candidate.Adapters is null || !decision.Site.Multipart)
                && proxyState.TryGetCluster(candidate.Cluster, out var cluster))
            {
                return (candidate, cluster);
            }
        }

        return null;
    }

    // Gives back what the request holds of the limits of the endpoint it is leaving: the asked endpoint's part of
    // its lease (the key's part stays), or the whole lease of a fallback it had failed over to.
    private async ValueTask ReleaseEndpointAsync(GatewayRequest exchange)
    {
        if (exchange.FallbackLease is { } fallbackLease)
        {
            exchange.FallbackLease = null;
            await quotas.CompleteAsync(fallbackLease, 0);
        }
        else if (exchange.Lease is { } lease)
        {
            await quotas.ReleaseEndpointAsync(lease);
        }
    }

    private static bool HasFallback(RoutingState state, ModelEndpoint asked, int next, long required, ModelGrant? grant)
    {
        for (var i = next; i < asked.Fallbacks.Count; i++)
        {
            if (IsViableFallback(state, asked.Fallbacks[i], required, grant, out _))
            {
                return true;
            }
        }

        return false;
    }

    // A fallback the client's key may not use is no fallback for it (SPEC §14).
    private static bool IsViableFallback(RoutingState state, string id, long required, ModelGrant? grant, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ModelEndpoint? endpoint) =>
        state.Router.Registry.TryGet(id, out endpoint) && endpoint.Status.IsAvailable() && required <= endpoint.MaxContextLength
        && (grant is null || grant.Allows(endpoint));

    // No attempt left, or every candidate destination cooling down: 503 with Retry-After when the gateway
    // knows when one comes back, else the last attempt's failure (502, or 504 for a timeout).
    private Task WriteExhaustedAsync(HttpContext context, ModelEndpoint endpoint, int attempts, ForwarderError lastError, TimeSpan shortestCooldown, bool allCooling)
    {
        if (context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        context.Response.Clear();
        context.Features.Set<IForwarderErrorFeature>(null);
        int? retryAfter = shortestCooldown == TimeSpan.MaxValue ? null : Math.Max(1, (int)Math.Ceiling(shortestCooldown.TotalSeconds));
        var status = allCooling || lastError is ForwarderError.None or ForwarderError.NoAvailableDestinations
            ? StatusCodes.Status503ServiceUnavailable
            : lastError == ForwarderError.RequestTimedOut ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status502BadGateway;
        var message = attempts == 0
            ? $"Every backend for model `{endpoint.Id}` is cooling down after failures; retry after {retryAfter ?? 1} s."
            : $"No backend for model `{endpoint.Id}` could answer: {attempts} attempt(s) failed (last: {(lastError == ForwarderError.None ? "a retryable status" : lastError.ToString())})"
                + (allCooling ? $"; every backend is cooling down, retry after {retryAfter ?? 1} s." : ".");
        Log.Exhausted(logger, endpoint.Id.Value, endpoint.Cluster, attempts);
        context.Response.Headers[EndpointHeader] = endpoint.Id.Value;
        context.Response.Headers[AttemptsHeader] = AttemptsText(attempts);
        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            retryAfter ??= 1;
        }

        return (OpenAIError.UpstreamUnavailable(status, message) with { RetryAfterSeconds = retryAfter }).WriteAsync(context);
    }

    private static string AttemptsText(int attempts) =>
        attempts < s_attempts.Length ? s_attempts[attempts] : attempts.ToString(CultureInfo.InvariantCulture);

    private static void SetBody(HttpRequest request, ForwardedBodyStream stream)
    {
        request.Body = stream;
        request.ContentLength = stream.Length;
    }

    private bool TryReassign(HttpContext context, ClusterState cluster)
    {
        var feature = context.GetReverseProxyFeature();
        if (feature.Cluster.Config.ClusterId == cluster.ClusterId)
        {
            return true;
        }

        // The two-argument form with a route bound to the target cluster: with the one-argument form, passive
        // health and load balancing act on the route's original cluster (YARP #1750). The clone's id comes from
        // the pair, and its cluster is checked, so a configuration being applied cannot pair a request with a
        // route of another cluster.
        var cloneId = ModelRoutingProxyConfigProvider.CloneRouteId(feature.Route.Config.RouteId, cluster.ClusterId);
        if (!proxyState.TryGetRoute(cloneId, out var route) || route.Config.ClusterId != cluster.ClusterId)
        {
            return false;
        }

        context.ReassignProxyRequest(route, cluster);
        return true;
    }

    // Why a key may not have this routing result: the endpoint asked for (or the default) is not granted (404),
    // or the context fallback is not (the asked endpoint's context error); null when granted.
    private static RoutingError? Denied(ModelGrant grant, RouteResult result, ModelEndpoint? asked, long required)
    {
        if (asked is not null && !grant.Allows(asked))
        {
            return new RoutingError(RoutingErrorKind.ModelNotFound, asked.Id.Value);
        }

        if (result.Succeeded && !grant.Allows(result.Endpoint))
        {
            return asked is null
                ? new RoutingError(RoutingErrorKind.ModelNotFound, result.Endpoint.Id.Value)
                : new RoutingError(RoutingErrorKind.ContextTooLong, asked.Id.Value, required, asked.MaxContextLength);
        }

        return null;
    }

    // A multipart pass-through request (audio transcriptions and the like): routed on its `model` field,
    // whose value is replaced by the upstream model; no prompt estimate (the payload is media).
    private static Decision DecideMultipart(ReadOnlySpan<byte> body, string boundary, RoutingState state, GatewayRequest exchange)
    {
        switch (MultipartModelField.Find(body, boundary, out var start, out var end))
        {
            case MultipartModelResult.Duplicate:
                return new(OpenAIError.InvalidRequest("The `model` field appears more than once in the request body.", "model"));
            case MultipartModelResult.Absent or MultipartModelResult.Malformed:
                return Decision.Unchanged;
        }

        string name;
        try
        {
            name = s_strictUtf8.GetString(body[start..end]);
        }
        catch (DecoderFallbackException)
        {
            return new(OpenAIError.InvalidRequest("The `model` field is not valid UTF-8.", "model"));
        }

        var result = state.Router.RouteForContext(name, true, 0);
        exchange.RequestedModel = ModelLabels.Of(name, true, result.Succeeded ? result.Endpoint : state.Router.Registry.Resolve(name));
        if (exchange.Grant is { } grant && Denied(grant, result, state.Router.Registry.Resolve(name), 0) is not null)
        {
            return new(OpenAIError.ModelNotFound(name));
        }

        if (!result.Succeeded)
        {
            return new(OpenAIError.FromRouting(result.Error, 0, 0, state.RetryAfterSeconds));
        }

        var endpoint = result.Endpoint;
        if (endpoint.Adapters is not null)
        {
            return new(OpenAIError.InvalidRequest($"The model `{endpoint.Id}` applies an adapter stack, which form-data requests cannot carry.", "model"));
        }

        var site = new SpliceSite(Multipart: true, HasModelToken: true, ModelIsVerbatim: false, start, end, 0, false);
        var (cutStart, cutEnd, insert) = Splice(body, site, endpoint);
        return new(endpoint, 0, 0, false, cutStart, cutEnd, insert, site);
    }

    private Decision Decide(ReadOnlySpan<byte> body, RoutingState state, bool passThrough, GatewayRequest exchange, BackendPromptCount? counted = null)
    {
        var operation = exchange.Operation;
        var grant = exchange.Grant;
        using var text = new PromptText();
        var (counter, cache) = estimator.Pass(state.TokenEstimation);
        var parsed = OpenAIRequestParser.Parse(body, counter, state.TokenEstimation.MediaPartTokens, text, cache);
        if (passThrough && (parsed.Error is BodyError.InvalidJson or BodyError.NotAnObject || (parsed.Error == BodyError.None && !parsed.ModelIsString)))
        {
            // A pass-through body that names no model is not the gateway's to judge: forwarded as received.
            return Decision.Unchanged;
        }

        switch (parsed.Error)
        {
            case BodyError.InvalidJson:
                return new(OpenAIError.InvalidRequest("The request body is not valid JSON: " + parsed.ErrorDetail));
            case BodyError.NotAnObject:
                return new(OpenAIError.InvalidRequest("The request body must be a JSON object."));
            case BodyError.ModelNotString:
                return new(OpenAIError.InvalidRequest("The `model` parameter must be a string.", "model"));
            case BodyError.DuplicateModel:
                return new(OpenAIError.InvalidRequest("The `model` parameter appears more than once in the request body.", "model"));
        }

        char[]? rented = null;
        Span<char> name = parsed.ModelIsString
            ? (parsed.ModelTokenEnd - parsed.ModelTokenStart <= StackModelChars
                ? stackalloc char[StackModelChars]
                : rented = ArrayPool<char>.Shared.Rent(parsed.ModelTokenEnd - parsed.ModelTokenStart))
            : [];
        try
        {
            if (parsed.ModelIsString)
            {
                name = name[..OpenAIRequestParser.GetModelName(body, parsed, name)];
            }

            var router = state.Router;
            var prompt = parsed.PromptTokens;
            var result = router.RouteForContext(name, parsed.ModelIsString, prompt + parsed.OutputTokens);
            // The endpoint the client named (or the default): the routed one unless a fallback or an error came of it.
            var asked = result.Succeeded && !result.IsContextFallback ? result.Endpoint
                : parsed.ModelIsString ? router.Registry.Resolve(name) : router.Registry.DefaultEndpoint;
            exchange.RequestedModel = ModelLabels.Of(name, parsed.ModelIsString, asked);
            if (grant is not null && asked is not null && !grant.Allows(asked))
            {
                return new(OpenAIError.ModelNotFound(parsed.ModelIsString ? name.ToString() : asked.Id.Value)); // before any count is spent on it
            }

            if (PromptTokenEstimator.ShouldCountExactly(state.TokenEstimation, result, asked, prompt + parsed.OutputTokens))
            {
                if (!estimator.TryCountExactly(state.TokenEstimation, body, text.Ranges, parsed, result.Endpoint ?? asked, counted, out prompt, out var pending))
                {
                    return new(null, 0, 0, false, 0, 0, [], default, Pending: pending);
                }

                result = router.RouteForContext(name, parsed.ModelIsString, prompt + parsed.OutputTokens);
            }

            if (grant is not null && Denied(grant, result, asked, prompt + parsed.OutputTokens) is { } denied)
            {
                // A model the key may not use does not exist for it (SPEC §14); a fallback it may not use is no fallback.
                return new(denied.Kind == RoutingErrorKind.ModelNotFound
                    ? OpenAIError.ModelNotFound(parsed.ModelIsString ? name.ToString() : denied.Model ?? "")
                    : OpenAIError.FromRouting(denied, prompt, parsed.OutputTokens, state.RetryAfterSeconds));
            }

            if (!result.Succeeded)
            {
                return new(OpenAIError.FromRouting(result.Error, prompt, parsed.OutputTokens, state.RetryAfterSeconds));
            }

            var endpoint = result.Endpoint;
            if (endpoint.Adapters is not null && parsed.HasMergedAdapters)
            {
                return new(OpenAIError.InvalidRequest(
                    $"The model `{endpoint.Id}` applies an adapter stack; the gateway sets `merged_adapters` for it, so the request must not.", "merged_adapters"));
            }

            var site = new SpliceSite(false, parsed.HasModelToken, parsed.ModelIsString && !parsed.ModelIsEscaped,
                parsed.ModelTokenStart, parsed.ModelTokenEnd, parsed.ObjectStart, parsed.IsEmptyObject);
            var (cutStart, cutEnd, insert) = Splice(body, site, endpoint);
            // A stream's token usage comes from its final usage chunk: asked for when the client did not (SPEC §14).
            var usageEdit = operation is GenAIOperation.Chat or GenAIOperation.TextCompletion && StreamUsageRequest.Applies(parsed)
                ? StreamUsageRequest.Edit(body, parsed)
                : BodyEdit.None;
            return new(endpoint, prompt, prompt + parsed.OutputTokens, result.IsContextFallback, cutStart, cutEnd, insert, site)
            {
                Streaming = parsed.Stream,
                OutputTokens = parsed.OutputTokens,
                UsageEdit = usageEdit,
            };
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    // One splice of the body for `endpoint`: the model value is replaced (or "model":… inserted as the first
    // member), and for an adapter stack the merged_adapters member follows it. In a multipart body only the
    // model field's value is replaced.
    private static (int CutStart, int CutEnd, byte[] Insert) Splice(ReadOnlySpan<byte> body, SpliceSite site, ModelEndpoint endpoint)
    {
        if (site.Multipart)
        {
            return (site.TokenStart, site.TokenEnd, Encoding.UTF8.GetBytes(endpoint.UpstreamModel));
        }

        var upstream = EncodedModel(endpoint.UpstreamModel);
        var stack = endpoint.Adapters is null ? [] : s_mergedAdapters.GetValue(endpoint, MergedAdaptersMember);
        if (!site.HasModelToken)
        {
            var at = site.ObjectStart + 1;
            return (at, at, Concat("\"model\":"u8, upstream, stack, site.IsEmptyObject ? [] : ","u8));
        }

        if (site.ModelIsVerbatim && body[site.TokenStart..site.TokenEnd].SequenceEqual(upstream))
        {
            return (site.TokenEnd, site.TokenEnd, stack);
        }

        return (site.TokenStart, site.TokenEnd, stack.Length == 0 ? upstream : Concat(upstream, stack, [], []));
    }

    private static byte[] EncodedModel(string upstream)
    {
        if (s_encodedModels.TryGetValue(upstream, out var encoded))
        {
            return encoded;
        }

        if (s_encodedModels.Count > 10_000)
        {
            s_encodedModels.Clear();
        }

        var json = JsonEncodedText.Encode(upstream, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
        return s_encodedModels[upstream] = Concat("\""u8, json.EncodedUtf8Bytes, "\""u8, []);
    }

    private static byte[] Concat(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, ReadOnlySpan<byte> d)
    {
        var result = new byte[a.Length + b.Length + c.Length + d.Length];
        a.CopyTo(result);
        b.CopyTo(result.AsSpan(a.Length));
        c.CopyTo(result.AsSpan(a.Length + b.Length));
        d.CopyTo(result.AsSpan(a.Length + b.Length + c.Length));
        return result;
    }

    // ,"merged_adapters":{"ids":[…],"weights":[…],"merge_strategy":"linear"} (LoRAX's shape, SPEC §7).
    private static byte[] MergedAdaptersMember(ModelEndpoint endpoint)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        buffer.Write(",\"merged_adapters\":"u8);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("ids");
            foreach (var adapter in endpoint.Adapters!.Adapters)
            {
                writer.WriteStringValue(adapter.Name);
            }

            writer.WriteEndArray();
            writer.WriteStartArray("weights");
            foreach (var adapter in endpoint.Adapters.Adapters)
            {
                writer.WriteNumberValue(adapter.Weight);
            }

            writer.WriteEndArray();
            writer.WriteString("merge_strategy", "linear");
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private async Task MapForwarderErrorAsync(HttpContext context, ModelEndpoint endpoint)
    {
        var error = context.GetForwarderErrorFeature();
        if (error is null || context.Response.HasStarted || error.Error == ForwarderError.RequestCanceled || context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        Log.UpstreamFailed(logger, endpoint.Id.Value, endpoint.Cluster, error.Error);
        var status = context.Response.StatusCode is StatusCodes.Status503ServiceUnavailable or StatusCodes.Status504GatewayTimeout
            ? context.Response.StatusCode
            : StatusCodes.Status502BadGateway;
        var detail = error.Error switch
        {
            ForwarderError.NoAvailableDestinations => $"No backend of cluster '{endpoint.Cluster}' is available for model `{endpoint.Id}`.",
            ForwarderError.RequestTimedOut => $"The backend for model `{endpoint.Id}` did not answer in time.",
            _ => $"The backend for model `{endpoint.Id}` could not be reached ({error.Error}).",
        };
        await OpenAIError.UpstreamUnavailable(status, detail).WriteAsync(context);
    }

    private readonly record struct Decision(
        ModelEndpoint? Endpoint, long PromptTokens, long Required, bool IsFallback, int CutStart, int CutEnd, byte[] Insert, SpliceSite Site, OpenAIError? Error = null,
        BackendCountRequest? Pending = null)
    {
        public Decision(OpenAIError error)
            : this(null, 0, 0, false, 0, 0, [], default, error)
        {
        }

        /// <summary>Gets the decision to forward the body as received, on the request's own route.</summary>
        public static Decision Unchanged => new(null, 0, 0, false, 0, 0, [], default);

        /// <summary>Gets whether the client asked for a stream.</summary>
        public bool Streaming { get; init; }

        /// <summary>Gets the output budget the request names (max_tokens and the like), or 0.</summary>
        public long OutputTokens { get; init; }

        /// <summary>Gets the edit that asks the backend for the stream's usage chunk, or none.</summary>
        public BodyEdit UsageEdit { get; init; }
    }

    // Where the model goes in the body, so any endpoint's splice can be made from the one parse (failover).
    private readonly record struct SpliceSite(
        bool Multipart, bool HasModelToken, bool ModelIsVerbatim, int TokenStart, int TokenEnd, int ObjectStart, bool IsEmptyObject);

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Debug, "Routed to endpoint '{Endpoint}' on cluster '{Cluster}' with about {Tokens} prompt tokens.", EventName = "Routed")]
        public static partial void Routed(ILogger logger, string endpoint, string cluster, long tokens);

        [LoggerMessage(11, LogLevel.Information, "Refused a request ({Code}): {Message}", EventName = "Refused")]
        public static partial void Refused(ILogger logger, string code, string message);

        [LoggerMessage(13, LogLevel.Information, "Refused {Method} {Path}: not a path clients may reach.", EventName = "UnknownPath")]
        public static partial void UnknownPath(ILogger logger, string method, string path);

        [LoggerMessage(14, LogLevel.Warning, "Attempt {Attempt} for endpoint '{Endpoint}' (cluster '{Cluster}', destination '{Destination}') failed before a response started: {Reason}", EventName = "AttemptFailed")]
        public static partial void AttemptFailed(ILogger logger, string endpoint, string cluster, string destination, string reason, int attempt);

        [LoggerMessage(15, LogLevel.Warning, "No backend could serve endpoint '{Endpoint}' (cluster '{Cluster}') after {Attempts} attempt(s).", EventName = "FailoverExhausted")]
        public static partial void Exhausted(ILogger logger, string endpoint, string cluster, int attempts);

        [LoggerMessage(16, LogLevel.Debug, "Refused a request to {Path}: {Reason}", EventName = "ClientKeyRefused")]
        public static partial void KeyRefused(ILogger logger, string path, string reason);

        [LoggerMessage(17, LogLevel.Debug, "Rate limit reached for key '{Key}' on endpoint '{Endpoint}' ({Limit}).", EventName = "RateLimited")]
        public static partial void RateLimited(ILogger logger, string key, string endpoint, string limit);

        [LoggerMessage(12, LogLevel.Warning, "The backend for endpoint '{Endpoint}' (cluster '{Cluster}') failed: {Error}", EventName = "UpstreamFailed")]
        public static partial void UpstreamFailed(ILogger logger, string endpoint, string cluster, ForwarderError error);
    }
}
