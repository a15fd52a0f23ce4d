// Trash: photos deleted in the last days (the server's --trash-days); restore one,
// or delete it for good. Thumbnails are the signed URLs <image> loads without the
// token; an older server's are downloaded with it.
const api = require('../../utils/request')
const {signedMedia} = require('../../utils/media')

Component({
  data: {images: [], loading: false, error: ''},
  methods: {
    onLoad() {
      return this.reload()
    },
    async reload() {
      this.setData({loading: true, error: ''})
      try {
        const page = await api.request({path: '/api/v1/trash?limit=200'})
        const images = page.items.map(i => {
          const media = signedMedia(i)
          return {id: i.id, name: i.filename, thumb: media ? media.thumbnail : '', media, urls: i.urls}
        })
        this.setData({images, loading: false})
        await Promise.all(images.map((image, index) => this.loadThumb(image, index)))
      } catch (error) {
        this.setData({loading: false, error: error.message})
      }
    },
    async loadThumb(image, index) {
      if (image.media || !image.urls.thumbnail) return
      try {
        const path = await api.download({path: image.urls.thumbnail})
        this.setData({[`images[${index}].thumb`]: path})
      } catch (error) {
        // a grey cell is enough
      }
    },
    async restore(e) {
      const id = e.currentTarget.dataset.id
      try {
        await api.request({path: `/api/v1/trash/${id}/restore`, method: 'POST'})
        this.drop(id)
        wx.showToast({title: '已恢复', icon: 'success'})
      } catch (error) {
        wx.showToast({title: error.message, icon: 'none'})
      }
    },
    purge(e) {
      const id = e.currentTarget.dataset.id
      return new Promise(resolve => {
        wx.showModal({
          title: '彻底删除',
          content: '删除后无法恢复。',
          confirmText: '删除',
          confirmColor: '#fa5151',
          success: async ({confirm}) => {
            if (!confirm) return resolve(false)
            try {
              await api.request({path: `/api/v1/trash/${id}`, method: 'DELETE'})
              this.drop(id)
              resolve(true)
            } catch (error) {
              wx.showToast({title: error.message, icon: 'none'})
              resolve(false)
            }
          },
        })
      })
    },
    drop(id) {
      this.setData({images: this.data.images.filter(i => i.id !== id)})
    },
  },
})
