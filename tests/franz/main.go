// Command franz-read reads one partition with franz-go, the Go client, and
// prints each record as a JSON line ({"offset", "key", "value"}), so the
// tests can check what franz-go makes of a log: from -from, until -limit
// records or the record just below the partition's high watermark (the
// caller writes last what it wants read to the end).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type record struct {
	Offset int64  `json:"offset"`
	Key    string `json:"key"`
	Value  string `json:"value"`
}

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers, comma-separated")
	topic := flag.String("topic", "", "topic to read")
	partition := flag.Int("partition", 0, "partition to read")
	from := flag.Int64("from", 0, "first offset to read")
	limit := flag.Int("limit", 0, "stop after this many records (0: at the high watermark)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()

	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			*topic: {int32(*partition): kgo.NewOffset().At(*from)},
		}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "franz-read:", err)
		os.Exit(2)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out := json.NewEncoder(os.Stdout)
	read := 0
	for {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "franz-read: %d records read, then: %v\n", read, ctx.Err())
			os.Exit(1)
		}
		for _, e := range fetches.Errors() {
			fmt.Fprintf(os.Stderr, "franz-read: %s[%d]: %v\n", e.Topic, e.Partition, e.Err)
			os.Exit(1)
		}
		done := false
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				if done {
					return
				}
				if err := out.Encode(record{r.Offset, string(r.Key), string(r.Value)}); err != nil {
					fmt.Fprintln(os.Stderr, "franz-read:", err)
					os.Exit(1)
				}
				read++
				done = (*limit > 0 && read >= *limit) || r.Offset+1 >= p.HighWatermark
			}
		})
		if done {
			return
		}
	}
}
