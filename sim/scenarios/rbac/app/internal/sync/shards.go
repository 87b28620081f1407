// Package sync splits the inventory feed between the running replicas: it watches the
// Deployment's own pods (an informer on pods in POD_NAMESPACE) and takes the leader lease
// "inventory-sync" before it commits a shard map.
package sync

import (
	"context"
	"os"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

func WatchPeers(ctx context.Context, client kubernetes.Interface) (cache.SharedIndexInformer, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 30*time.Second,
		informers.WithNamespace(os.Getenv("POD_NAMESPACE")))
	pods := factory.Core().V1().Pods().Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		return nil, context.DeadlineExceeded
	}
	return pods, nil
}
