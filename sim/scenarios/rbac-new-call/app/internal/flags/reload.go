// Package flags keeps the exporter's settings (the "ledger-export-settings" ConfigMap in
// POD_NAMESPACE) current. Until 2.7 the settings were read once at start-up (a list of
// ConfigMaps); since 2.8 an informer watches them, so a change applies without a restart.
package flags

import (
	"context"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch starts the ConfigMap informer (a list, then a watch, of the namespace's ConfigMaps)
// and waits for its first sync: the exporter does not start with stale settings.
func Watch(ctx context.Context, client kubernetes.Interface, apply func(map[string]string)) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithNamespace(os.Getenv("POD_NAMESPACE")))
	configMaps := factory.Core().V1().ConfigMaps().Informer()
	configMaps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj interface{}) { apply(settingsOf(obj)) },
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), configMaps.HasSynced) {
		return context.DeadlineExceeded
	}
	return nil
}

func settingsOf(obj interface{}) map[string]string {
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == "ledger-export-settings" {
		return cm.Data
	}
	return nil
}
