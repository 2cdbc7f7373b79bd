namespace ModelRouting.Registry;

/// <summary>Operational status of a model endpoint.</summary>
public enum EndpointStatus
{
    /// <summary>Loaded and serving requests.</summary>
    Ready,

    /// <summary>Being loaded; requests get 503 with Retry-After.</summary>
    Loading,

    /// <summary>Failed; unavailable until it recovers.</summary>
    Error,

    /// <summary>Taken out of service by an administrator.</summary>
    Disabled,
}

/// <summary>Helpers for <see cref="EndpointStatus"/>.</summary>
public static class EndpointStatusExtensions
{
    /// <summary>Returns whether an endpoint with this status can serve requests (only <see cref="EndpointStatus.Ready"/>).</summary>
    public static bool IsAvailable(this EndpointStatus status) => status == EndpointStatus.Ready;

    /// <summary>Returns the lower-case wire name: <c>ready</c>, <c>loading</c>, <c>error</c> or <c>disabled</c>.</summary>
    public static string ToWireName(this EndpointStatus status) => status switch
    {
        EndpointStatus.Ready => "ready",
        EndpointStatus.Loading => "loading",
        EndpointStatus.Error => "error",
        EndpointStatus.Disabled => "disabled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>
    /// Parses a status name case-insensitively. Only the four names are accepted: numbers and
    /// comma-separated combinations (which <see cref="Enum.TryParse{TEnum}(string?, bool, out TEnum)"/> would
    /// accept, e.g. "Loading, Error" as Disabled) are refused.
    /// </summary>
    public static bool TryParse(string? text, out EndpointStatus status)
    {
        var name = text?.Trim();
        foreach (var candidate in Enum.GetValues<EndpointStatus>())
        {
            if (string.Equals(name, candidate.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                status = candidate;
                return true;
            }
        }

        status = EndpointStatus.Ready;
        return false;
    }
}
