package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/stream"
)

// publisher publishes generated events with their publish time as
// timestamp, so the receiver measures publish-to-receipt latency.
type publisher struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names stream.Names
	run   string
	seq   int
}

func newPublisher(url string) (*publisher, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	return &publisher{nc: nc, js: js, names: stream.Names{Prefix: prefix},
		run: strconv.FormatInt(time.Now().UnixNano(), 36)}, nil
}

func (p *publisher) publish(typ string) error {
	p.seq++
	id := "evt_bench_" + p.run + "_" + strconv.Itoa(p.seq)
	// The publish time to the nanosecond (epoch milliseconds would add up
	// to a millisecond to every latency the receiver measures).
	body := fmt.Sprintf(`{"id":%q,"type":%q,"timestamp":%q,"data":{"messageId":"msg_%d",`+
		`"providerId":"solapi","type":"SMS","to":"010-****-0344","status":"SENT",`+
		`"text":"예약 알림: 내일 오후 3시 & 장소 <서울역 2층>"},"metadata":{"providerId":"solapi",`+
		`"channelId":"ch_%d","messageId":"msg_%d","organizationId":"org_17"},"version":"1.0"}`,
		id, typ, time.Now().UTC().Format(time.RFC3339Nano), p.seq, p.seq%channels, p.seq)
	m := nats.NewMsg(p.names.EventSubject(typ))
	m.Header.Set(nats.MsgIdHdr, id)
	m.Data = []byte(body)
	_, err := p.js.PublishMsgAsync(m)
	return err
}

type stats struct {
	Total struct {
		Unique        int64 `json:"unique"`
		Duplicates    int64 `json:"duplicates"`
		BadSignatures int64 `json:"bad_signatures"`
		Latency       struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
			Max float64 `json:"max"`
		} `json:"latency_ms"`
	} `json:"total"`
}

func (e *benchEnv) stats() (stats, error) {
	var s stats
	return s, getJSON(e.recvURL+"/stats", &s)
}

// waitDelivered waits until the receiver holds want unique deliveries and
// returns when that was first seen.
func (e *benchEnv) waitDelivered(want int64, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s, err := e.stats()
		if err != nil {
			return time.Time{}, err
		}
		if s.Total.Unique >= want {
			return time.Now(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("only part of %d deliveries arrived in %s", want, limit)
}

func (e *benchEnv) register(n int, types []string, path string) error {
	return e.registerAt(e.recvURL, n, types, path)
}

// channels is how many channels the generated events are spread over
// (metadata.channelId ch_0 … ch_7).
const channels = 8

// registerByChannel subscribes one endpoint per channel to types, each
// filtered to its channel: every event goes to exactly one of them.
func (e *benchEnv) registerByChannel(types []string, path string) error {
	for i := range channels {
		body := map[string]any{"url": fmt.Sprintf("%s/%s%d", e.recvURL, path, i),
			"event_types": types, "secret": e.secret,
			"filters": map[string]any{"channel_id": []string{fmt.Sprintf("ch_%d", i)}}}
		if err := postJSON(e.apiURLs[0]+"/v1/endpoints", body, nil); err != nil {
			return err
		}
	}
	return nil
}

func (e *benchEnv) registerAt(base string, n int, types []string, path string) error {
	for i := range n {
		body := map[string]any{"url": fmt.Sprintf("%s/%s%d", base, path, i),
			"event_types": types, "secret": e.secret}
		if err := postJSON(e.apiURLs[0]+"/v1/endpoints", body, nil); err != nil {
			return err
		}
	}
	return nil
}

// result is one scenario's figures.
type result struct {
	name       string
	deliveries int64
	elapsed    time.Duration
	cpu        time.Duration
	cpuParts   [3]time.Duration // consumer, NATS, PostgreSQL
	p50, p99   float64
	maxRSS     float64
	dup, bad   int64
}

func runScenarios(e *benchEnv, o options) error {
	pub, err := newPublisher(o.natsURL)
	if err != nil {
		return err
	}
	defer pub.nc.Close()
	if err := e.registerByChannel([]string{"message.*"}, "one"); err != nil {
		return err
	}
	if err := e.register(100, []string{"bench.fanout"}, "fan"); err != nil {
		return err
	}
	if err := e.registerMixed(); err != nil {
		return err
	}

	var results []result
	for _, sc := range []struct {
		key string
		run func(*benchEnv, *publisher, options) (result, error)
	}{
		{"throughput", throughput}, {"fanout", fanout}, {"steady", steadyLatency},
		{"healthy", healthyOnly}, {"mixed", mixed},
	} {
		if o.only != "" && !slices.Contains(strings.Split(o.only, ","), sc.key) {
			continue
		}
		r, err := sc.run(e, pub, o)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	report(o, results)
	return nil
}

// measure runs publish and waits for want deliveries, recording CPU of
// hookrelay, NATS and PostgreSQL and the consumer's peak memory meanwhile.
func measure(e *benchEnv, name string, want int64, publish func() error) (result, error) {
	before, err := e.stats()
	if err != nil {
		return result{}, err
	}
	cpu0 := e.sampleCPU()
	stopMem, maxRSS := e.watchMemory()
	start := time.Now()
	if err := publish(); err != nil {
		return result{}, err
	}
	end, err := e.waitDelivered(before.Total.Unique+want, 5*time.Minute)
	stopMem()
	if err != nil {
		return result{}, err
	}
	cpu1 := e.sampleCPU()
	parts := [3]time.Duration{cpu1[0].since(cpu0[0]), cpu1[1].since(cpu0[1]),
		cpu1[2].since(cpu0[2])}
	after, err := e.stats()
	return result{name: name, deliveries: want, elapsed: end.Sub(start),
		cpu: parts[0] + parts[1] + parts[2], cpuParts: parts,
		p50: after.Total.Latency.P50,
		p99: after.Total.Latency.P99, maxRSS: *maxRSS,
		dup: after.Total.Duplicates - before.Total.Duplicates,
		bad: after.Total.BadSignatures - before.Total.BadSignatures}, err
}

func (e *benchEnv) watchMemory() (stop func(), maxRSS *float64) {
	var peak float64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			for _, pid := range e.consumers {
				peak = max(peak, rssMB(pid))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }, &peak
}

func throughput(e *benchEnv, pub *publisher, o options) (result, error) {
	if err := postJSON(e.recvURL+"/reset", nil, nil); err != nil {
		return result{}, err
	}
	return measure(e, "throughput, 1 endpoint per event", int64(o.events), func() error {
		for range o.events {
			if err := pub.publish("message.sent"); err != nil {
				return err
			}
		}
		return awaitPublished(pub)
	})
}

func fanout(e *benchEnv, pub *publisher, o options) (result, error) {
	if err := postJSON(e.recvURL+"/reset", nil, nil); err != nil {
		return result{}, err
	}
	return measure(e, "fan-out, 1 event to 100 endpoints", int64(o.fanoutEvts*100), func() error {
		for range o.fanoutEvts {
			if err := pub.publish("bench.fanout"); err != nil {
				return err
			}
		}
		return awaitPublished(pub)
	})
}

func steadyLatency(e *benchEnv, pub *publisher, o options) (result, error) {
	if err := postJSON(e.recvURL+"/reset", nil, nil); err != nil {
		return result{}, err
	}
	total := int(o.rateFor.Seconds() * float64(o.rate))
	name := fmt.Sprintf("steady %d events/s for %s", o.rate, o.rateFor)
	return measure(e, name, int64(total), func() error { return paced(pub, o.rate, total) })
}

// paced publishes total events at rate per second, in 10ms steps.
func paced(pub *publisher, rate, total int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; sent < total; <-tick.C {
		due := min(int(time.Since(start).Seconds()*float64(rate))+1, total)
		for ; sent < due; sent++ {
			if err := pub.publish("message.sent"); err != nil {
				return err
			}
		}
	}
	return awaitPublished(pub)
}

func awaitPublished(pub *publisher) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-pub.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publishing did not complete in a minute")
	}
}

func report(o options, results []result) {
	fmt.Printf("\nhookrelay bench: %d consumer process(es), concurrency %d, batch 100/5ms, "+
		"signing (Standard Webhooks) and history on, receiver a separate process\n\n",
		o.consumers, o.concurrency)
	fmt.Println("| scenario | deliveries | seconds | deliveries/s | p50 ms | p99 ms | " +
		"CPU ms/delivery (hookrelay+NATS+PG) | consumer peak RSS MB | dup | bad sig |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %d | %.2f | %.0f | %.1f | %.1f | %.3f | %.0f | %d | %d |\n",
			r.name, r.deliveries, r.elapsed.Seconds(),
			float64(r.deliveries)/r.elapsed.Seconds(), r.p50, r.p99,
			float64(r.cpu.Microseconds())/1000/float64(r.deliveries), r.maxRSS, r.dup, r.bad)
	}
	if len(results) >= 5 {
		fmt.Printf("\nHealthy deliveries with a slow and a failing endpoint subscribed too: "+
			"%.2f of their rate alone (deliveries/s %.0f vs %.0f)\n",
			rate(results[4])/rate(results[3]), rate(results[4]), rate(results[3]))
	}
	fmt.Println("\nCPU per delivery by process (ms): consumer / nats-server / postgres")
	for _, r := range results {
		n := float64(r.deliveries)
		fmt.Printf("  %s: %.3f / %.3f / %.3f\n", r.name,
			ms(r.cpuParts[0])/n, ms(r.cpuParts[1])/n, ms(r.cpuParts[2])/n)
	}
	fmt.Println("\nLatency is from the event's timestamp (set when published) to its first " +
		"receipt, over the deliveries of that scenario. Throughput runs publish as fast as " +
		"JetStream accepts; elapsed time runs from the first publish to the last receipt.")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// registerMixed subscribes eight healthy endpoints to bench.healthy and
// bench.mixed, and one slow (2s answers) and one failing (500) endpoint to
// bench.mixed only.
func (e *benchEnv) registerMixed() error {
	if err := e.register(8, []string{"bench.healthy", "bench.mixed"}, "mix"); err != nil {
		return err
	}
	if err := e.registerAt(e.slowURL, 1, []string{"bench.mixed"}, "slow"); err != nil {
		return err
	}
	return e.registerAt(e.failURL, 1, []string{"bench.mixed"}, "fail")
}

func healthyOnly(e *benchEnv, pub *publisher, o options) (result, error) {
	if err := postJSON(e.recvURL+"/reset", nil, nil); err != nil {
		return result{}, err
	}
	n := o.events / 8
	return measure(e, "8 healthy endpoints alone", int64(n*8), func() error {
		return publishN(pub, "bench.healthy", n)
	})
}

// mixed sends the same load as healthyOnly to the same eight endpoints,
// while a slow and a failing endpoint subscribe to the same events; only
// the healthy deliveries are waited for.
func mixed(e *benchEnv, pub *publisher, o options) (result, error) {
	if err := postJSON(e.recvURL+"/reset", nil, nil); err != nil {
		return result{}, err
	}
	n := o.events / 8
	return measure(e, "8 healthy + 1 slow + 1 failing", int64(n*8), func() error {
		return publishN(pub, "bench.mixed", n)
	})
}

func publishN(pub *publisher, typ string, n int) error {
	for range n {
		if err := pub.publish(typ); err != nil {
			return err
		}
	}
	return awaitPublished(pub)
}

func rate(r result) float64 { return float64(r.deliveries) / r.elapsed.Seconds() }
