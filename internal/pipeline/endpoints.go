package pipeline

import (
	"context"
	"sync"

	"github.com/hookrelay/hookrelay/internal/db"
)

// endpointCacheMax bounds the endpoints kept; past it the cache starts over.
const endpointCacheMax = 10000

// endpointCache keeps the endpoints the fan-out stage sends to, with their
// secrets decrypted. The claim of a batch names each matching endpoint with
// its updated_at, so an endpoint changed anywhere (another process, the API)
// is reloaded by the first batch that needs it: a cached copy is never used
// past a change.
type endpointCache struct {
	store *db.Store
	mu    sync.Mutex
	m     map[string]cachedEndpoint
}

type cachedEndpoint struct {
	ep        *db.Endpoint
	secretErr error
}

func newEndpointCache(store *db.Store) *endpointCache {
	return &endpointCache{store: store, m: map[string]cachedEndpoint{}}
}

// resolve returns the endpoints that claimed names, loading in one query
// those missing or changed. An endpoint deleted since the claim is absent.
func (c *endpointCache) resolve(ctx context.Context, claimed []db.Claimed) (
	map[string]cachedEndpoint, error) {
	out := make(map[string]cachedEndpoint)
	var stale []string
	c.mu.Lock()
	for _, cl := range claimed {
		if _, ok := out[cl.EndpointID]; ok {
			continue
		}
		ce, ok := c.m[cl.EndpointID]
		if ok && ce.ep.UpdatedAt.Equal(cl.EndpointUpdatedAt) {
			out[cl.EndpointID] = ce
			continue
		}
		out[cl.EndpointID] = cachedEndpoint{}
		stale = append(stale, cl.EndpointID)
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return out, nil
	}

	eps, secretErrs, err := c.store.EndpointsByID(ctx, stale)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m)+len(eps) > endpointCacheMax {
		c.m = map[string]cachedEndpoint{}
	}
	for _, id := range stale {
		ep, ok := eps[id]
		if !ok {
			delete(out, id)
			delete(c.m, id)
			continue
		}
		ce := cachedEndpoint{ep: ep, secretErr: secretErrs[id]}
		out[id] = ce
		if cur, ok := c.m[id]; !ok || !cur.ep.UpdatedAt.After(ep.UpdatedAt) {
			c.m[id] = ce
		}
	}
	return out, nil
}
